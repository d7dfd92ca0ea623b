//! `namegen`: the command-line program. All the work is in the library; this only parses the
//! arguments, runs the command, and turns an error into a message and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use namegen_host::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
