//! `namegen export`: folds every BatchNorm of an unfolded checkpoint into its Linear layer,
//! writes the folded model in f32, f16, i8 or q8 (atomically), and writes its model card.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CommandError;
use crate::card;
use crate::export::export;
use namegen_files::checkpoint::Checkpoint;
use namegen_files::output::Outputs;
use namegen_model::Dtype;

/// Flags of `namegen export`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ExportArgs {
    /// The unfolded checkpoint (written by `namegen train`, or by any tool following
    /// model/FORMAT.md).
    #[arg(long)]
    pub from: PathBuf,
    /// Where the folded model is written; its card goes beside it as `<name>.card.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// How the weights are stored (q8: integer-only inference, calibrated as model/FORMAT.md
    /// says).
    #[arg(long, default_value_t = Dtype::F32, value_parser = super::dtype_parser())]
    pub dtype: Dtype,
}

/// Runs `namegen export`.
pub fn run(args: &ExportArgs) -> Result<ExitCode, CommandError> {
    let card_path = card::path_for(&args.out);
    let mut outputs = Outputs::new();
    outputs.input(&args.from);
    outputs.output(&args.out)?;
    outputs.output(&card_path)?;
    let checkpoint = Checkpoint::load(&args.from)?;
    let dtype = args.dtype;
    crate::note!(
        "folding {} into {dtype} and checking it on every context",
        args.from.display()
    );
    let exported = export(&checkpoint, dtype).map_err(|source| CommandError::Export {
        path: args.from.clone(),
        source,
    })?;
    crate::interrupt::check()?;
    outputs.write(&args.out, &exported.bytes)?;
    let card = card::ModelCard::new(
        &checkpoint,
        &args.out,
        dtype,
        exported.bytes.len(),
        exported.check,
    );
    outputs.write(&card_path, &card.to_bytes())?;
    crate::outln!(
        "{}: {} model, {} bytes; max |logit - unfolded| {:.2e} over {} contexts; card {}",
        args.out.display(),
        dtype,
        exported.bytes.len(),
        exported.check.max_logit_diff,
        exported.check.contexts,
        card_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
