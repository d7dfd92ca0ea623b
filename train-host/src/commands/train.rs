//! `namegen train`: reads a names file, trains with the seeds' recipe (every value a flag),
//! shows a progress bar, writes checkpoints (every N steps, at the end, and on Ctrl-C), and
//! reports the train / val / test loss in eval mode with running and calibrated BatchNorm
//! statistics. `--plots DIR` also writes the diagnostics JSON and PNG plots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CommandError;
use crate::checkpoint::Checkpoint;
use crate::cli::{BackendArg, GradArg};
use crate::dataset::Dataset;
use crate::diagnostics::Diagnostics;
use crate::trainer::{PartLoss, Recipe, Trainer};

/// Exit code after Ctrl-C (128 + SIGINT), once the checkpoint is written.
const INTERRUPTED: u8 = 130;

/// Flags of `namegen train`. Every recipe value defaults to makemore part 3's.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The names file: one name per line.
    #[arg(long, default_value = "data/names.txt")]
    pub data: PathBuf,
    /// Where the unfolded checkpoint is written.
    #[arg(long, default_value = "namegen.ckpt.safetensors")]
    pub out: PathBuf,
    /// Continue the run saved in this checkpoint (same data and recipe flags).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// burn backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Flex)]
    pub backend: BackendArg,
    /// How gradients are computed.
    #[arg(long, value_enum, default_value_t = GradArg::Manual)]
    pub grad: GradArg,
    /// SGD steps.
    #[arg(long, default_value_t = 200_000)]
    pub steps: u64,
    /// Seed of the initial weights and of the batch sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seed of the 80/10/10 train/val/test split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Learning rate of the late phase.
    #[arg(long, default_value_t = 0.01)]
    pub lr_late: f64,
    /// Fraction of the steps, at the end, run at --lr-late.
    #[arg(long, default_value_t = 0.25)]
    pub late_fraction: f64,
    /// Symbols of context.
    #[arg(long, default_value_t = 3)]
    pub block_size: usize,
    /// Embedding width.
    #[arg(long, default_value_t = 10)]
    pub embed_dim: usize,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,100,100,100,100")]
    pub hidden: Vec<usize>,
    /// Standard deviation of the initial embedding, N(0, std^2).
    #[arg(long, default_value_t = 1.0)]
    pub embed_std: f64,
    /// Gain of the initial Linear weights: N(0, 1) * gain / sqrt(fan_in).
    #[arg(long, default_value_t = 1.0)]
    pub weight_gain: f64,
    /// Initial BatchNorm gamma.
    #[arg(long, default_value_t = 1.0)]
    pub gamma: f64,
    /// Initial BatchNorm beta.
    #[arg(long, default_value_t = 0.0)]
    pub beta: f64,
    /// Factor on the last BatchNorm's initial gamma.
    #[arg(long, default_value_t = 0.1)]
    pub last_gamma_scale: f64,
    /// BatchNorm running-statistics momentum.
    #[arg(long, default_value_t = 0.1)]
    pub momentum: f64,
    /// BatchNorm epsilon.
    #[arg(long, default_value_t = 1e-5)]
    pub eps: f64,
    /// Write a checkpoint every this many steps (0: only at the end and on Ctrl-C).
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint_every: u64,
    /// Print the loss every this many steps (0: never).
    #[arg(long, default_value_t = 10_000)]
    pub log_every: u64,
    /// Write diagnostics.json and PNG plots into this directory (activation gradients are
    /// recorded with the closed-form gradients only).
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Record the diagnostics every this many steps.
    #[arg(long, default_value_t = 100)]
    pub stats_every: u64,
    /// Skip the final evaluation (train/val/test loss).
    #[arg(long)]
    pub no_eval: bool,
    /// Stop once this many steps are done, write the checkpoint, and exit without evaluating
    /// (to train in parts: continue with --resume).
    #[arg(long)]
    pub stop_after: Option<u64>,
}

impl TrainArgs {
    /// The recipe these flags describe.
    pub fn recipe(&self) -> Recipe {
        Recipe {
            block_size: self.block_size,
            embed_dim: self.embed_dim,
            hidden: self.hidden.clone(),
            steps: self.steps,
            batch_size: self.batch_size,
            lr: self.lr,
            lr_late: self.lr_late,
            late_fraction: self.late_fraction,
            embed_std: self.embed_std,
            weight_gain: self.weight_gain,
            gamma: self.gamma,
            beta: self.beta,
            last_gamma_scale: self.last_gamma_scale,
            momentum: self.momentum,
            eps: self.eps,
            seed: self.seed,
            split_seed: self.split_seed,
        }
    }
}

/// Loads the names file and prints what was read.
pub fn load_dataset(path: &Path) -> Result<Dataset, CommandError> {
    let dataset = Dataset::load(path)?;
    eprintln!(
        "{}: {} names read, {} blank lines skipped, vocabulary of {} symbols",
        path.display(),
        dataset.names.len(),
        dataset.skipped,
        dataset.vocab.len()
    );
    Ok(dataset)
}

/// Builds the trainer the flags ask for: fresh, or resumed from `--resume`.
pub fn trainer(args: &TrainArgs) -> Result<Trainer, CommandError> {
    let dataset = load_dataset(&args.data)?;
    let trainer = match &args.resume {
        None => Trainer::new(
            dataset,
            args.recipe(),
            args.backend.into(),
            args.grad.into(),
        )?,
        Some(path) => {
            let checkpoint = Checkpoint::load(path)?;
            let trainer = Trainer::resume(
                dataset,
                args.recipe(),
                &checkpoint,
                &path.display().to_string(),
                args.backend.into(),
                args.grad.into(),
            )?;
            eprintln!("resuming {} at step {}", path.display(), trainer.step);
            let saved = checkpoint.extra.get(namegen_model::format::keys::BACKEND);
            if saved.is_some_and(|b| b != trainer.backend.name()) {
                eprintln!(
                    "warning: the checkpoint was trained on {}, this run uses {}: the result \
                     will not be bit-identical to an uninterrupted run",
                    saved.map_or("?", String::as_str),
                    trainer.backend.name()
                );
            }
            trainer
        }
    };
    let examples = &trainer.examples;
    eprintln!(
        "examples: {} train, {} val, {} test; {} parameters; backend {}",
        examples.train.len(),
        examples.val.len(),
        examples.test.len(),
        trainer.config.unfolded_parameters(),
        trainer.backend.name()
    );
    Ok(trainer)
}

fn progress_bar(trainer: &Trainer) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(trainer.recipe.steps),
        ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps | loss {msg} | {per_sec} | ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(trainer.step);
    bar.reset_eta();
    bar
}

/// Prints a line above the progress bar, or plainly when the bar is hidden (stderr is not a
/// terminal), where indicatif would drop it.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Runs `namegen train`.
pub fn run(args: &TrainArgs) -> Result<ExitCode, CommandError> {
    let mut trainer = trainer(args)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("warning: Ctrl-C will not save a checkpoint: {e}");
    }
    let mut diagnostics = args
        .plots
        .as_ref()
        .map(|_| Diagnostics::new(args.stats_every, trainer.step));

    let bar = progress_bar(&trainer);
    let start = Instant::now();
    let first_step = trainer.step;
    // Exponential moving average of the loss, bias-corrected, for the progress bar.
    let (mut smoothed, mut weight) = (0.0f64, 0.0f64);
    let mut last_draw = Instant::now();
    while !trainer.finished() {
        let step = trainer.step;
        let loss = trainer.step(diagnostics.as_mut())?;
        smoothed = 0.99 * smoothed + 0.01 * f64::from(loss);
        weight = 0.99 * weight + 0.01;
        if step == 0 {
            say(
                &bar,
                format!(
                    "step 0 loss {loss:.4} (ln {} = {:.4})",
                    trainer.config.vocab_size(),
                    (trainer.config.vocab_size() as f64).ln()
                ),
            );
        }
        if args.log_every > 0 && (step + 1).is_multiple_of(args.log_every) {
            say(
                &bar,
                format!(
                    "{:>7}/{}: loss {loss:.4}, smoothed {:.4}",
                    step + 1,
                    trainer.recipe.steps,
                    smoothed / weight
                ),
            );
        }
        if last_draw.elapsed() > Duration::from_millis(100) {
            bar.set_position(trainer.step);
            bar.set_message(format!("{:.4}", smoothed / weight));
            last_draw = Instant::now();
        }
        if args.checkpoint_every > 0 && trainer.step.is_multiple_of(args.checkpoint_every) {
            trainer.checkpoint(None).save(&args.out)?;
        }
        if args.stop_after.is_some_and(|stop| trainer.step >= stop) && !trainer.finished() {
            bar.abandon();
            trainer.checkpoint(None).save(&args.out)?;
            eprintln!(
                "stopped at step {} as asked: checkpoint written to {} (continue with --resume)",
                trainer.step,
                args.out.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if interrupted.load(Ordering::SeqCst) {
            bar.abandon();
            trainer.checkpoint(None).save(&args.out)?;
            eprintln!(
                "interrupted at step {}: checkpoint written to {} (continue with --resume)",
                trainer.step,
                args.out.display()
            );
            return Ok(ExitCode::from(INTERRUPTED));
        }
    }
    bar.set_position(trainer.step);
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let steps = trainer.step - first_step;
    eprintln!(
        "trained {steps} steps in {seconds:.1} s: {:.0} steps/s on {} ({} gradients)",
        steps as f64 / seconds.max(1e-9),
        trainer.backend.name(),
        match trainer.grad_path {
            crate::trainer::GradPath::Manual => "closed-form",
            crate::trainer::GradPath::Autodiff => "autodiff",
        }
    );

    let mut val_loss = None;
    if !args.no_eval {
        let report = trainer.report();
        print_report(&report);
        val_loss = report
            .iter()
            .find(|r| r.part == namegen_model::Part::Val)
            .map(|r| r.running);
    }
    trainer.checkpoint(val_loss).save(&args.out)?;
    eprintln!("checkpoint written to {}", args.out.display());

    if let (Some(dir), Some(diagnostics)) = (&args.plots, &diagnostics) {
        std::fs::create_dir_all(dir).map_err(|e| CommandError::Diagnostics {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let json = dir.join("diagnostics.json");
        diagnostics.save(&json)?;
        for line in diagnostics.summary() {
            eprintln!("{line}");
        }
        let loaded = crate::diagnostics::load(&diagnostics.to_json()).unwrap_or_default();
        let pngs = crate::plots::draw_all(&loaded, dir)?;
        eprintln!("diagnostics written to {}", json.display());
        for png in pngs {
            eprintln!("plot written to {}", png.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the eval-mode losses as a table on stdout.
pub fn print_report(report: &[PartLoss]) {
    println!("loss (eval mode)  running stats  calibrated stats");
    for r in report {
        println!(
            "{:<17} {:>13.4}  {:>16.4}",
            r.part.name(),
            r.running,
            r.calibrated
        );
    }
}
