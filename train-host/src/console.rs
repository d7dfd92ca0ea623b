//! What the program prints, and how a closed stdout or stderr is taken.
//!
//! Results go to stdout through [`out`]: when the reader has gone (`namegen sample | head -1`)
//! the write fails with a broken pipe, and the command ends quietly with status 141, the status
//! of a program ended by SIGPIPE, as `cat` or `grep` would. Commands write their files before
//! they print, so nothing is lost by it. Progress and messages go to stderr through [`note`],
//! which never fails: a closed stderr must not stop hours of training.

use std::fmt;
use std::io::Write;

/// Why a result could not be written to stdout; either way the command stops.
#[derive(Debug, thiserror::Error)]
pub enum StdoutError {
    /// stdout has no reader any more: the command ends quietly with [`Self::CLOSED_STATUS`].
    #[error("standard output is closed")]
    Closed,
    /// Any other failure (a full disk behind `> file`): an error worth a message, since the
    /// results are incomplete.
    #[error("cannot write to standard output: {0}")]
    Write(#[source] std::io::Error),
}

impl StdoutError {
    /// 128 + SIGPIPE, the status shells show for a program that a closed pipe ended.
    pub const CLOSED_STATUS: u8 = 141;
}

/// Writes `text` to stdout and flushes it, so that a reader sees each result as it comes.
pub fn out(text: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => StdoutError::Closed,
            _ => StdoutError::Write(e),
        })
}

/// Writes `text` and a line end to stderr, ignoring a closed stderr.
pub fn note(text: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `println!` for results: `outln!("{x}")?` stops the command when stdout is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::console::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` for messages and progress: never fails.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::console::note(format_args!($($arg)*))
    };
}
