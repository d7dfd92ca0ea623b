//! The `namegen` command line: one [`Command`] variant per subcommand (pipeline, train, bench,
//! stats, export, verify, sample, score, split), each run by a function in its own module
//! under [`crate::commands`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// namegen: a character-level name generator (makemore part 3) trained with burn on the CPU.
#[derive(Debug, Parser)]
#[command(name = "namegen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole job: train, split, export every dtype, verify each, sample.
    Pipeline(commands::pipeline::PipelineArgs),
    /// Train the model on a names file and write an unfolded checkpoint.
    Train(Box<commands::train::TrainArgs>),
    /// Measure performance.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: BenchTarget,
    },
    /// Draw the PNG plots of a diagnostics JSON file written by `namegen train --plots`.
    Stats(commands::stats::StatsArgs),
    /// Fold the BatchNorms of a checkpoint and write the folded model (f32, f16, i8 or q8).
    Export(commands::export::ExportArgs),
    /// Check a folded model against its unfolded checkpoint on every context.
    Verify(commands::verify::VerifyArgs),
    /// Generate names with a folded model.
    Sample(commands::sample::SampleArgs),
    /// Score names under a folded model.
    Score(commands::score::ScoreArgs),
    /// Write the train/val/test split as three text files.
    Split(commands::split::SplitArgs),
}

/// What `namegen bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Training speed in steps per second, single thread.
    Train(commands::bench::BenchArgs),
}

/// Runs the command; errors are returned for the caller to print.
pub fn run(cli: Cli) -> Result<ExitCode, commands::CommandError> {
    match cli.command {
        Command::Pipeline(args) => commands::pipeline::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Bench {
            what: BenchTarget::Train(args),
        } => commands::bench::run(&args),
        Command::Stats(args) => commands::stats::run(&args),
        Command::Export(args) => commands::export::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Sample(args) => commands::sample::run(&args),
        Command::Score(args) => commands::score::run(&args),
        Command::Split(args) => commands::split::run(&args),
    }
}
