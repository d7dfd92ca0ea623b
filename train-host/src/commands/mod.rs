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

use crate::checkpoint::CheckpointError;
use crate::dataset::DatasetError;
use crate::export::ExportError;
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
    /// A checkpoint or diagnostics file could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
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
    /// A file cannot be read, or a directory created.
    #[error("{path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
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
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, CommandError> {
    std::fs::read(path).map_err(|source| CommandError::Read {
        path: path.to_owned(),
        source,
    })
}
