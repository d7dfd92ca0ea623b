//! `namegen export`: folds every BatchNorm of an unfolded checkpoint into its Linear layer,
//! writes the folded model in f32, f16 or i8 (atomically), and writes its model card.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CommandError;
use crate::card;
use crate::checkpoint::{Checkpoint, write_atomically};
use crate::cli::DtypeArg;
use crate::export::export;

/// Flags of `namegen export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The unfolded checkpoint (written by `namegen train`, or by any tool following
    /// model/FORMAT.md).
    #[arg(long)]
    pub from: PathBuf,
    /// Where the folded model is written; its card goes beside it as `<name>.card.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// How the weights are stored.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    pub dtype: DtypeArg,
}

/// Runs `namegen export`.
pub fn run(args: &ExportArgs) -> Result<ExitCode, CommandError> {
    let checkpoint = Checkpoint::load(&args.from)?;
    let dtype = args.dtype.into();
    let exported = export(&checkpoint, dtype).map_err(|source| CommandError::Export {
        path: args.from.clone(),
        source,
    })?;
    write_atomically(&args.out, &exported.bytes)?;
    let card_path = card::path_for(&args.out);
    let card = card::ModelCard::new(
        &checkpoint,
        &args.out,
        dtype,
        exported.bytes.len(),
        exported.check,
    );
    card.save(&card_path)?;
    println!(
        "{}: {} model, {} bytes; max |logit - unfolded| {:.2e} over {} contexts; card {}",
        args.out.display(),
        dtype,
        exported.bytes.len(),
        exported.check.max_logit_diff,
        exported.check.contexts,
        card_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
