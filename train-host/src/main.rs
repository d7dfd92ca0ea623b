//! `namegen`: the command-line program. All the work is in the library; this installs the
//! signal handlers, parses the arguments, runs the command, and turns its end into a message
//! and an exit status: 0, 1 for an error, 128 + N after signal N, 141 when stdout closed.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;
use namegen_host::cli::{Cli, run};
use namegen_host::commands::CommandError;
use namegen_host::console::StdoutError;
use namegen_host::{interrupt, note};

fn main() -> ExitCode {
    if let Err(e) = interrupt::install() {
        note!("warning: SIGINT, SIGTERM and SIGHUP will end the program without saving: {e}");
    }
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(CommandError::Stdout(StdoutError::Closed)) => {
            ExitCode::from(StdoutError::CLOSED_STATUS)
        }
        Err(error @ CommandError::Interrupted { signal, .. }) => {
            note!("{error}");
            ExitCode::from(signal.exit_status())
        }
        Err(error) => {
            note!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
