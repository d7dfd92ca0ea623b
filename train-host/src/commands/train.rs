//! `namegen train`: reads a names file, trains with the seeds' recipe (every value a flag),
//! shows a progress bar, writes checkpoints (every N steps, at the end, and on SIGINT, SIGTERM
//! or SIGHUP), and reports the train / val / test loss in eval mode with running and
//! calibrated BatchNorm statistics. `--plots DIR` also writes the diagnostics JSON and PNG plots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CommandError;
use crate::diagnostics::Diagnostics;
use crate::trainer::{Backend, GradPath, PartLoss, Recipe, Trainer};
use namegen_files::checkpoint::Checkpoint;
use namegen_files::dataset::Dataset;
use namegen_files::output::Outputs;

/// `--checkpoint-every`: often enough that a crash loses minutes, not the run.
const CHECKPOINT_EVERY: u64 = 10_000;
/// `--log-every`.
const LOG_EVERY: u64 = 10_000;
/// `--stats-every`: 2,000 records over the default run, enough for smooth plots.
const STATS_EVERY: u64 = 100;

/// Flags of `namegen train`. Every recipe value defaults to makemore part 3's.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TrainArgs {
    /// The names file: one name per line.
    #[arg(long, default_value = super::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Where the unfolded checkpoint is written.
    #[arg(long, default_value = "namegen.ckpt.safetensors")]
    pub out: PathBuf,
    /// Continue the run saved in this checkpoint (same data and recipe flags).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// burn backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// How gradients are computed.
    #[arg(long, value_enum, default_value_t = GradPath::ClosedForm)]
    pub grad: GradPath,
    /// What the run computes.
    #[command(flatten)]
    pub recipe: Recipe,
    /// Write a checkpoint every this many steps (0: only at the end and on a signal).
    #[arg(long, default_value_t = CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Print the loss every this many steps (0: never).
    #[arg(long, default_value_t = LOG_EVERY)]
    pub log_every: u64,
    /// Write diagnostics.json and PNG plots into this directory (activation gradients are
    /// recorded with the closed-form gradients only).
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Record the diagnostics every this many steps.
    #[arg(long, default_value_t = STATS_EVERY)]
    pub stats_every: u64,
    /// Skip the final evaluation (train/val/test loss).
    #[arg(long)]
    pub no_eval: bool,
    /// Stop once this many steps are done, write the checkpoint, and exit without evaluating
    /// (to train in parts: continue with --resume).
    #[arg(long)]
    pub stop_after: Option<u64>,
}

/// Loads the names file and prints what was read.
pub fn load_dataset(path: &Path) -> Result<Dataset, CommandError> {
    let dataset = Dataset::load(path)?;
    crate::note!(
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
        None => Trainer::new(dataset, args.recipe.clone(), args.backend, args.grad)?,
        Some(path) => {
            let checkpoint = Checkpoint::load(path)?;
            let trainer = Trainer::resume(
                dataset,
                args.recipe.clone(),
                &checkpoint,
                &path.display().to_string(),
                args.backend,
                args.grad,
            )?;
            crate::note!("resuming {} at step {}", path.display(), trainer.step);
            let saved = checkpoint.extra.get(namegen_model::format::keys::BACKEND);
            if saved.is_some_and(|b| b != trainer.backend.name()) {
                crate::note!(
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
    crate::note!(
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
        crate::note!("{line}");
    } else {
        bar.println(line);
    }
}

/// With `--plots`, the most statistics records (`--steps / --stats-every`) the diagnostics
/// hold. A record of the widest network (8 hidden layers) takes under 3.2 KB of pretty JSON,
/// so the file stays under the 256 MiB that `namegen stats` reads back.
const MAX_RECORDS: u64 = 50_000;
/// With `--plots`, the most steps whose loss the diagnostics hold in memory (8 bytes each).
const MAX_RECORDED_STEPS: u64 = 50_000_000;

/// The files `namegen train` reads and writes, checked before the names file is even read.
fn plan(args: &TrainArgs) -> Result<Outputs, CommandError> {
    // The flags first: a bad value is told before any file is looked at.
    args.recipe.validate()?;
    let mut outputs = Outputs::new();
    // Not `--resume`: continuing a run in the file it was saved to is what it is for (the
    // checkpoint is read whole before anything is written).
    outputs.input(&args.data);
    if let Some(dir) = &args.plots {
        let steps = args.recipe.steps;
        let records = steps / args.stats_every.max(1);
        if args.stats_every == 0 || records > MAX_RECORDS || steps > MAX_RECORDED_STEPS {
            return Err(CommandError::Flag {
                flag: "--plots",
                reason: format!(
                    "the diagnostics of {} steps recorded every {} would not fit in memory: at \
                     most {MAX_RECORDED_STEPS} steps and {MAX_RECORDS} records (raise \
                     --stats-every, or train without --plots)",
                    steps, args.stats_every
                ),
            });
        }
        // First, so that `--out` may be inside it.
        outputs.directory(dir)?;
        outputs.output(&dir.join(DIAGNOSTICS_FILE))?;
        for name in crate::plots::FILES {
            outputs.output(&dir.join(name))?;
        }
    }
    outputs.output(&args.out)?;
    Ok(outputs)
}

/// The diagnostics file `--plots DIR` writes beside the plots.
pub const DIAGNOSTICS_FILE: &str = "diagnostics.json";

/// Writes the trainer's checkpoint to `--out`. Should that fail (the disk filled up during
/// training, say), the state is written to the temporary directory instead and the error
/// says where: a finished training is never lost to a full disk.
fn save(
    outputs: &Outputs,
    trainer: &Trainer,
    val_loss: Option<f64>,
    path: &Path,
) -> Result<(), CommandError> {
    let bytes = trainer.checkpoint(val_loss).to_bytes();
    let Err(error) = outputs.write(path, &bytes) else {
        return Ok(());
    };
    let rescue = std::env::temp_dir().join(format!(
        "namegen-rescue-{}-step-{}.ckpt.safetensors",
        std::process::id(),
        trainer.step
    ));
    let mut rescue_outputs = Outputs::new();
    let rescued = rescue_outputs
        .output(&rescue)
        .and_then(|()| rescue_outputs.write(&rescue, &bytes));
    match rescued {
        Ok(()) => Err(CommandError::Rescued { error, rescue }),
        Err(rescue_error) => Err(CommandError::Lost {
            error,
            rescue,
            rescue_error: Box::new(rescue_error),
        }),
    }
}

/// Saves the checkpoint on `signal` and says so in the error the binary prints.
fn interrupted(
    outputs: &Outputs,
    trainer: &Trainer,
    val_loss: Option<f64>,
    args: &TrainArgs,
    signal: crate::interrupt::Interrupted,
) -> CommandError {
    if let Err(e) = save(outputs, trainer, val_loss, &args.out) {
        return e;
    }
    CommandError::Interrupted {
        signal,
        saved: format!(
            "checkpoint at step {} of {} written to {} ({})",
            trainer.step,
            trainer.recipe.steps,
            args.out.display(),
            if trainer.finished() {
                "trained to the end; the same command with --resume evaluates it"
            } else {
                "continue with --resume"
            }
        ),
    }
}

/// Runs `namegen train`: every output is checked first, the checkpoint is written before the
/// evaluation and again with its validation loss, the plots after it, and the report is
/// printed last, so that neither a signal nor a closed stdout loses any of them.
pub fn run(args: &TrainArgs) -> Result<ExitCode, CommandError> {
    let outputs = plan(args)?;
    let mut trainer = trainer(args)?;
    let checkpoint_bytes = trainer.checkpoint(None).to_bytes().len() as u64;
    outputs.require_space(&args.out, checkpoint_bytes)?;
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
        if let Err(signal) = crate::interrupt::check() {
            bar.abandon();
            return Err(interrupted(&outputs, &trainer, None, args, signal));
        }
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
            save(&outputs, &trainer, None, &args.out)?;
        }
        if args.stop_after.is_some_and(|stop| trainer.step >= stop) && !trainer.finished() {
            bar.abandon();
            save(&outputs, &trainer, None, &args.out)?;
            crate::note!(
                "stopped at step {} as asked: checkpoint written to {} (continue with --resume)",
                trainer.step,
                args.out.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    bar.set_position(trainer.step);
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let steps = trainer.step - first_step;
    crate::note!(
        "trained {steps} steps in {seconds:.1} s: {:.0} steps/s on {} ({} gradients)",
        steps as f64 / seconds.max(1e-9),
        trainer.backend.name(),
        trainer.grad_path.name()
    );
    save(&outputs, &trainer, None, &args.out)?;
    crate::note!("checkpoint written to {}", args.out.display());

    let mut report = None;
    if !args.no_eval {
        crate::note!("evaluating: train / val / test loss in eval mode");
        let stop = |signal| interrupted(&outputs, &trainer, None, args, signal);
        let losses = trainer.report().map_err(stop)?;
        let val_loss = losses
            .iter()
            .find(|r| r.part == namegen_model::Part::Val)
            .map(|r| r.running);
        save(&outputs, &trainer, val_loss, &args.out)?;
        crate::note!(
            "checkpoint written to {} with its validation loss",
            args.out.display()
        );
        report = Some(losses);
    }

    if let (Some(dir), Some(diagnostics)) = (&args.plots, &diagnostics) {
        crate::interrupt::check().map_err(|signal| CommandError::Interrupted {
            signal,
            saved: format!(
                "checkpoint written to {}, plots not drawn",
                args.out.display()
            ),
        })?;
        let json = dir.join(DIAGNOSTICS_FILE);
        let file = diagnostics.to_file();
        outputs.write(&json, &file.to_bytes())?;
        for line in diagnostics.summary() {
            crate::note!("{line}");
        }
        let pngs = crate::plots::render_all(&file)?;
        crate::note!("diagnostics written to {}", json.display());
        for (name, png) in crate::plots::FILES.iter().zip(&pngs) {
            let path = dir.join(name);
            outputs.write(&path, png)?;
            crate::note!("plot written to {}", path.display());
        }
    }
    if let Some(report) = report {
        print_report(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the eval-mode losses as a table on stdout.
pub fn print_report(report: &[PartLoss]) -> Result<(), CommandError> {
    crate::outln!("loss (eval mode)  running stats  calibrated stats")?;
    for r in report {
        crate::outln!(
            "{:<17} {:>13.4}  {:>16.4}",
            r.part.name(),
            r.running,
            r.calibrated
        )?;
    }
    Ok(())
}
