//! `namegen split`: writes the deterministic 80/10/10 split as three text files
//! (`train.txt`, `val.txt`, `test.txt`, one name per line, in split order), so that another
//! tool (a PyTorch script, say) can train and evaluate on exactly the same names.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_model::Part;

use super::CommandError;
use super::train::load_dataset;
use namegen_files::output::Outputs;

/// Flags of `namegen split`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SplitArgs {
    /// The names file.
    #[arg(long, default_value = super::DEFAULT_DATA)]
    pub data: PathBuf,
    /// The split seed (`namegen train --split-seed`).
    #[arg(long, default_value_t = namegen_model::split::DEFAULT_SEED)]
    pub seed: u64,
    /// Where the three files go (created if missing).
    #[arg(long, default_value = "split")]
    pub out_dir: PathBuf,
}

/// Runs `namegen split`: the three files are written before anything is printed.
pub fn run(args: &SplitArgs) -> Result<ExitCode, CommandError> {
    let paths = Part::ALL.map(|part| args.out_dir.join(format!("{}.txt", part.name())));
    let mut outputs = Outputs::new();
    outputs.input(&args.data);
    outputs.directory(&args.out_dir)?;
    for path in &paths {
        outputs.output(path)?;
    }
    let dataset = load_dataset(&args.data)?;
    let parts = dataset.split_names(args.seed)?;
    crate::interrupt::check()?;
    for (path, names) in paths.iter().zip(&parts) {
        let text: String = names.iter().flat_map(|n| [n.as_str(), "\n"]).collect();
        outputs.write(path, text.as_bytes())?;
    }
    for (path, names) in paths.iter().zip(&parts) {
        crate::outln!("{}: {} names", path.display(), names.len())?;
    }
    Ok(ExitCode::SUCCESS)
}
