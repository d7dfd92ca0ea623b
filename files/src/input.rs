//! Reading an input whole, with an upper bound checked before anything is allocated: a huge
//! file is refused from its size, and an endless one (`/dev/zero`, a pipe) once it passes the
//! bound, so that no input can exhaust memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing or cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Io {
        /// What the file was to be.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The path is a directory.
    #[error("{path}: is a directory, not a {what}")]
    Directory {
        /// What the file was to be.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any valid one.
    #[error(
        "{path}: larger than {mib:.1} MiB, more than a {what} can be",
        mib = *limit as f64 / (1u64 << 20) as f64
    )]
    TooLarge {
        /// What the file was to be.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
}

/// Reads the file at `path` whole, refusing it once it is larger than `limit` bytes; `what`
/// names the kind of file in the errors ("names file", "model").
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let too_large = || ReadError::TooLarge {
        what,
        path: path.to_owned(),
        limit,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(ReadError::Directory {
            what,
            path: path.to_owned(),
        });
    }
    // Devices and pipes report 0: their bound is enforced while reading.
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}
