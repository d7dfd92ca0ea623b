//! `namegen bench train`: training speed in steps per second, single thread.
//!
//! Each configuration (backend x gradient path) is run `--runs` times from the same fresh
//! start: `--warmup` steps untimed, then `--steps` timed steps (each a real training step:
//! batch sampling, forward, backward, SGD and running-statistics update, loss read back).
//! The median is reported. burn is built without its `rayon` feature, so both backends run
//! every op on the calling thread: the figures are single-thread by construction.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::CommandError;
use crate::cli::{BackendArg, GradArg};
use crate::trainer::{Backend, GradPath, Recipe, Trainer};

/// The PyTorch reference's training speed (DESIGN.md): 722 steps/s on one thread.
pub const PYTORCH_STEPS_PER_SECOND: f64 = 722.0;

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
    Manual,
    /// burn autodiff only.
    Autodiff,
    /// Both.
    All,
}

/// Flags of `namegen bench train`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The names file.
    #[arg(long, default_value = "data/names.txt")]
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
}

/// Steps per second of each run of one configuration.
pub fn measure(
    dataset: &crate::dataset::Dataset,
    backend: Backend,
    grad: GradPath,
    warmup: u64,
    steps: u64,
    runs: usize,
) -> Result<Vec<f64>, CommandError> {
    let recipe = Recipe {
        steps: warmup + steps,
        ..Recipe::default()
    };
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut trainer = Trainer::new(dataset.clone(), recipe.clone(), backend, grad)?;
        for _ in 0..warmup {
            trainer.step(None)?;
        }
        let start = Instant::now();
        for _ in 0..steps {
            trainer.step(None)?;
        }
        rates.push(steps as f64 / start.elapsed().as_secs_f64().max(1e-9));
    }
    Ok(rates)
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
    let dataset = super::train::load_dataset(&args.data)?;
    let backends: Vec<Backend> = match args.backend {
        BenchBackend::All => Backend::ALL.to_vec(),
        BenchBackend::Flex => vec![BackendArg::Flex.into()],
        BenchBackend::Ndarray => vec![BackendArg::Ndarray.into()],
    };
    let grads: Vec<GradPath> = match args.grad {
        BenchGrad::All => vec![GradPath::Manual, GradPath::Autodiff],
        BenchGrad::Manual => vec![GradArg::Manual.into()],
        BenchGrad::Autodiff => vec![GradArg::Autodiff.into()],
    };
    println!(
        "single thread, {} timed steps after {} warm-up steps, {} runs each, batch 32",
        args.steps, args.warmup, args.runs
    );
    println!("backend  gradients    median steps/s  x PyTorch (722)  200k steps  runs");
    for &backend in &backends {
        for &grad in &grads {
            let rates = measure(&dataset, backend, grad, args.warmup, args.steps, args.runs)?;
            let median = median(&rates);
            let runs: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "{:<8} {:<12} {:>14.0}  {:>15.2}  {:>8.0} s  {}",
                backend.name(),
                match grad {
                    GradPath::Manual => "closed-form",
                    GradPath::Autodiff => "autodiff",
                },
                median,
                median / PYTORCH_STEPS_PER_SECOND,
                200_000.0 / median,
                runs.join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
