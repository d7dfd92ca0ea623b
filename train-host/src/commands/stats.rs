//! `namegen stats`: redraws the PNG plots from a diagnostics JSON file written by
//! `namegen train --plots DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CommandError;

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

/// Runs `namegen stats`.
pub fn run(args: &StatsArgs) -> Result<ExitCode, CommandError> {
    let fail = |reason: String| CommandError::Diagnostics {
        path: args.diagnostics.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&args.diagnostics).map_err(|e| fail(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let loaded = crate::diagnostics::load(&value)
        .ok_or_else(|| fail("not a diagnostics file of `namegen train --plots`".into()))?;
    for png in crate::plots::draw_all(&loaded, &args.plots)? {
        println!("plot written to {}", png.display());
    }
    Ok(ExitCode::SUCCESS)
}
