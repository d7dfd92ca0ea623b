//! `namegen stats`: redraws the PNG plots from a diagnostics JSON file written by
//! `namegen train --plots DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use namegen_files::input::read_bounded;
use namegen_files::output::Outputs;

use super::CommandError;
use crate::diagnostics::DiagnosticsFile;

/// Flags of `namegen stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// The diagnostics JSON file.
    #[arg(long)]
    pub diagnostics: PathBuf,
    /// Where the PNG plots go.
    #[arg(long)]
    pub plots: PathBuf,
}

/// The largest diagnostics file read: more than `namegen train --plots` writes at its limits
/// (200,000 steps recorded every 100 make about 2 MB).
const MAX_DIAGNOSTICS_BYTES: u64 = 256 << 20;

/// Runs `namegen stats`.
pub fn run(args: &StatsArgs) -> Result<ExitCode, CommandError> {
    let paths = crate::plots::FILES.map(|name| args.plots.join(name));
    let mut outputs = Outputs::new();
    outputs.input(&args.diagnostics);
    outputs.directory(&args.plots)?;
    for path in &paths {
        outputs.output(path)?;
    }
    let fail = |reason: String| CommandError::Diagnostics {
        path: args.diagnostics.clone(),
        reason,
    };
    let bytes = read_bounded(&args.diagnostics, MAX_DIAGNOSTICS_BYTES, "diagnostics file")?;
    let diagnostics = DiagnosticsFile::from_bytes(&bytes).map_err(|e| {
        fail(format!(
            "not a diagnostics file of `namegen train --plots`: {e}"
        ))
    })?;
    let pngs = crate::plots::render_all(&diagnostics)?;
    crate::interrupt::check()?;
    for (path, png) in paths.iter().zip(&pngs) {
        outputs.write(path, png)?;
    }
    for path in &paths {
        crate::outln!("plot written to {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
