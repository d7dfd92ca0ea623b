//! One module per `namegen` subcommand, each with its clap arguments and a `run` function.

pub mod bench;
pub mod export;
pub mod pipeline;
pub mod sample;
pub mod score;
pub mod split;
pub mod stats;
pub mod train;
pub mod verify;

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use namegen_model::Dtype;

use namegen_files::checkpoint::CheckpointError;
use namegen_files::dataset::DatasetError;
use namegen_files::input::{ReadError, read_bounded};
use namegen_files::output::OutputError;

use crate::console::StdoutError;
use crate::export::ExportError;
use crate::interrupt::Interrupted;
use crate::plots::PlotError;
use crate::trainer::TrainError;

/// Why a command failed; the binary prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Training could not start or go on.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The names file is unusable.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// An input could not be read, or is larger than any valid one.
    #[error(transparent)]
    Input(#[from] ReadError),
    /// An output cannot or could not be written; found before the work starts where it can be.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A diagnostics file could not be read.
    #[error("{path}: {reason}")]
    Diagnostics {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A folded model file is not valid.
    #[error("{path}: not a valid folded model: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What the loader found.
        source: namegen_sampler::LoadError,
    },
    /// A checkpoint cannot be exported.
    #[error("{path}: {source}")]
    Export {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: ExportError,
    },
    /// The operating system gave no random seed (`namegen sample` without `--seed`).
    #[error("no random seed from the operating system ({0}); pass --seed")]
    Entropy(#[from] rand::rngs::SysError),
    /// The sampling settings do not fit the model.
    #[error("{0}")]
    Sample(#[from] namegen_sampler::SampleError),
    /// A name cannot be scored.
    #[error("cannot score {name:?}: {source}")]
    Score {
        /// The name.
        name: String,
        /// Why.
        source: namegen_sampler::ScoreError,
    },
    /// Inputs that do not belong together, or a request that cannot be met.
    #[error("{0}")]
    Mismatch(String),
    /// A flag's value is out of range.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag, as typed (`--count`).
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint could not be written where asked; it was written to `rescue` instead.
    #[error("{error}; the trained state was written to {rescue} instead", rescue = rescue.display())]
    Rescued {
        /// Why the checkpoint could not be written where asked.
        error: OutputError,
        /// Where it was written instead.
        rescue: PathBuf,
    },
    /// A checkpoint could be written neither where asked nor to the rescue file: the trained
    /// state is lost, and both causes are given.
    #[error(
        "{error}; the trained state could not be written to {rescue} either ({rescue_error}) and is lost",
        rescue = rescue.display()
    )]
    Lost {
        /// Why the checkpoint could not be written where asked.
        error: OutputError,
        /// The rescue file tried.
        rescue: PathBuf,
        /// Why that failed too (boxed: the rarest error need not make every result larger).
        rescue_error: Box<OutputError>,
    },
    /// SIGINT, SIGTERM or SIGHUP stopped the command.
    #[error("interrupted by {}: {saved}", signal.name())]
    Interrupted {
        /// The signal.
        signal: Interrupted,
        /// What was saved before stopping (or that nothing was written).
        saved: String,
    },
    /// A result could not be written to stdout; when its reader has gone, the command ends
    /// quietly.
    #[error(transparent)]
    Stdout(#[from] StdoutError),
}

impl From<Interrupted> for CommandError {
    /// A signal where the command had nothing of its own to save: every file it wrote
    /// before is whole, none is half written.
    fn from(signal: Interrupted) -> Self {
        Self::Interrupted {
            signal,
            saved: "stopped before writing anything more (files already written are whole)".into(),
        }
    }
}

/// Reads a folded model file whole, refusing one larger than any model can be.
pub fn read_model(path: &Path) -> Result<Vec<u8>, CommandError> {
    Ok(read_bounded(
        path,
        namegen_model::format::MAX_FILE_BYTES,
        "model",
    )?)
}

/// The names file every command reads unless told otherwise.
pub const DEFAULT_DATA: &str = "data/names.txt";

/// `--dtype`: the names of [`Dtype::EVERY`] (q8 included; the pipeline exports
/// [`Dtype::ALL`] only), parsed into the model crate's own type (which is
/// `no_std` and knows nothing of clap), so that no second list of dtypes exists.
pub fn dtype_parser() -> impl TypedValueParser<Value = Dtype> {
    PossibleValuesParser::new(Dtype::EVERY.map(Dtype::name)).map(|name| {
        Dtype::from_name(&name).unwrap_or_else(|| unreachable!("{name} is one of Dtype::EVERY"))
    })
}
