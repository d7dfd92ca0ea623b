//! `namegen split`: writes the deterministic 80/10/10 split as three text files
//! (`train.txt`, `val.txt`, `test.txt`, one name per line, in split order), so that another
//! tool (a PyTorch script, say) can train and evaluate on exactly the same names.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_model::Part;

use super::CommandError;
use super::train::load_dataset;
use crate::checkpoint::write_atomically;

/// Flags of `namegen split`.
#[derive(Debug, Clone, Args)]
pub struct SplitArgs {
    /// The names file.
    #[arg(long, default_value = "data/names.txt")]
    pub data: PathBuf,
    /// The split seed (`namegen train --split-seed`).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the three files go (created if missing).
    #[arg(long, default_value = "split")]
    pub out_dir: PathBuf,
}

/// Runs `namegen split`.
pub fn run(args: &SplitArgs) -> Result<ExitCode, CommandError> {
    let dataset = load_dataset(&args.data)?;
    let parts = dataset.split_names(args.seed)?;
    std::fs::create_dir_all(&args.out_dir).map_err(|source| CommandError::Read {
        path: args.out_dir.clone(),
        source,
    })?;
    for (part, names) in Part::ALL.iter().zip(&parts) {
        let path = args.out_dir.join(format!("{}.txt", part.name()));
        let text: String = names.iter().flat_map(|n| [n.as_str(), "\n"]).collect();
        write_atomically(&path, text.as_bytes())?;
        println!("{}: {} names", path.display(), names.len());
    }
    Ok(ExitCode::SUCCESS)
}
