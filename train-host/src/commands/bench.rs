//! `namegen bench train`: training speed in steps per second, single thread.
//!
//! Each configuration (backend x gradient path) is run `--runs` times from the same fresh
//! start: `--warmup` steps untimed, then `--steps` timed steps (each a real training step:
//! batch sampling, forward, backward, SGD and running-statistics update, loss read back).
//! The runs are interleaved (one of each configuration, then the next round), so that a
//! machine's slow spell costs every configuration alike, and the median is reported with
//! each configuration's ratio to burn's own autodiff on the same backend, measured in the
//! same rounds. burn is built without its `rayon` feature, so both backends run
//! every op on the calling thread: the figures are single-thread by construction.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::CommandError;
use crate::trainer::{Backend, GradPath, Recipe, Trainer};

/// `--backend` of the benchmark: one backend or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// flex only.
    Flex,
    /// ndarray only.
    Ndarray,
    /// Both.
    All,
}

/// `--grad` of the benchmark: one gradient path or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchGrad {
    /// Closed-form backward only.
    ClosedForm,
    /// burn autodiff only.
    Autodiff,
    /// Both.
    All,
}

/// Flags of `namegen bench train`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The names file.
    #[arg(long, default_value = super::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Which backends.
    #[arg(long, value_enum, default_value_t = BenchBackend::All)]
    pub backend: BenchBackend,
    /// Which gradient paths.
    #[arg(long, value_enum, default_value_t = BenchGrad::All)]
    pub grad: BenchGrad,
    /// Timed steps per run.
    #[arg(long, default_value_t = 3000)]
    pub steps: u64,
    /// Untimed steps before each run.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Print the figures as JSON (what `namegen-tests`' `figures` reads).
    #[arg(long)]
    pub json: bool,
}

/// The figures of one configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchRow {
    /// `flex` or `ndarray`.
    pub backend: &'static str,
    /// `closed-form` or `autodiff`.
    pub grad: &'static str,
    /// Steps per second of each run, in the order run.
    pub runs: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// `median` over the median of autodiff on the same backend, when that was measured.
    pub vs_autodiff: Option<f64>,
}

/// The most runs per configuration.
const MAX_RUNS: usize = 1000;

/// Refuses counts no run can have: `--runs` outside 1..=[`MAX_RUNS`], or more warm-up and
/// timed steps together than a counter holds.
fn check_counts(warmup: u64, steps: u64, runs: usize) -> Result<(), CommandError> {
    if !(1..=MAX_RUNS).contains(&runs) {
        return Err(CommandError::Flag {
            flag: "--runs",
            reason: format!("{runs} is not in 1..={MAX_RUNS}"),
        });
    }
    match warmup.checked_add(steps) {
        Some(_) => Ok(()),
        None => Err(CommandError::Flag {
            flag: "--steps",
            reason: "with --warmup, more steps than a counter holds".into(),
        }),
    }
}

/// Steps per second of one run of one configuration, for counts [`check_counts`] accepted.
fn measure(
    dataset: &namegen_files::dataset::Dataset,
    backend: Backend,
    grad: GradPath,
    warmup: u64,
    steps: u64,
) -> Result<f64, CommandError> {
    let recipe = Recipe {
        steps: warmup + steps,
        ..Recipe::default()
    };
    let mut trainer = Trainer::new(dataset.clone(), recipe, backend, grad)?;
    for _ in 0..warmup {
        crate::interrupt::check()?;
        trainer.step(None)?;
    }
    let start = Instant::now();
    for _ in 0..steps {
        // An atomic load per step of about a millisecond: nothing to measure.
        crate::interrupt::check()?;
        trainer.step(None)?;
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs `namegen bench train`.
pub fn run(args: &BenchArgs) -> Result<ExitCode, CommandError> {
    check_counts(args.warmup, args.steps, args.runs)?;
    let dataset = super::train::load_dataset(&args.data)?;
    let backends: Vec<Backend> = match args.backend {
        BenchBackend::All => Backend::ALL.to_vec(),
        BenchBackend::Flex => vec![Backend::Flex],
        BenchBackend::Ndarray => vec![Backend::Ndarray],
    };
    let grads: Vec<GradPath> = match args.grad {
        BenchGrad::All => vec![GradPath::ClosedForm, GradPath::Autodiff],
        BenchGrad::ClosedForm => vec![GradPath::ClosedForm],
        BenchGrad::Autodiff => vec![GradPath::Autodiff],
    };
    let configs: Vec<(Backend, GradPath)> = backends
        .iter()
        .flat_map(|&b| grads.iter().map(move |&g| (b, g)))
        .collect();
    let mut rates = vec![Vec::with_capacity(args.runs); configs.len()];
    for round in 0..args.runs {
        for (&(backend, grad), rates) in configs.iter().zip(&mut rates) {
            crate::note!(
                "round {}/{}: {} {}",
                round + 1,
                args.runs,
                backend.name(),
                grad.name()
            );
            rates.push(measure(&dataset, backend, grad, args.warmup, args.steps)?);
        }
    }
    let medians: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    let autodiff = |backend: Backend| {
        let at = configs
            .iter()
            .position(|&c| c == (backend, GradPath::Autodiff))?;
        Some(medians[at])
    };
    let rows: Vec<BenchRow> = configs
        .iter()
        .zip(rates)
        .zip(&medians)
        .map(|((&(backend, grad), runs), &median)| BenchRow {
            backend: backend.name(),
            grad: grad.name(),
            vs_autodiff: autodiff(backend).map(|a| median / a),
            runs,
            median,
        })
        .collect();
    if args.json {
        let json = serde_json::json!({
            "steps": args.steps,
            "warmup": args.warmup,
            "batch_size": Recipe::default().batch_size,
            "rows": rows,
        });
        crate::outln!("{json:#}")?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "single thread, {} timed steps after {} warm-up steps, {} interleaved runs each, batch {}",
        args.steps,
        args.warmup,
        args.runs,
        Recipe::default().batch_size
    )?;
    crate::outln!("backend  gradients    median steps/s  x autodiff  200k steps  runs")?;
    for row in &rows {
        let runs: Vec<String> = row.runs.iter().map(|r| format!("{r:.0}")).collect();
        let ratio = row.vs_autodiff.map_or("-".into(), |r| format!("{r:.2}"));
        crate::outln!(
            "{:<8} {:<12} {:>14.0}  {:>10}  {:>8.0} s  {}",
            row.backend,
            row.grad,
            row.median,
            ratio,
            200_000.0 / row.median,
            runs.join(" ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
