//! `namegen verify`: runs every possible context through the unfolded eval-mode model in
//! burn and through the folded model with the sampler's own forward pass (the code devices
//! run), prints how far apart they are, and fails when the dtype's bound is broken.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_model::format::keys;
use namegen_sampler::ModelView;

use super::CommandError;
use super::train::load_dataset;
use crate::card::{ModelCard, path_for};
use crate::checkpoint::Checkpoint;
use crate::cli::BackendArg;
use crate::dataset::SplitExamples;
use crate::verify::{BurnLogits, ContextSet, SamplerLogits, compare};

/// Flags of `namegen verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The unfolded checkpoint the model was exported from.
    #[arg(long)]
    pub unfolded: PathBuf,
    /// The folded model.
    #[arg(long)]
    pub model: PathBuf,
    /// The names file the checkpoint was trained on (for the validation loss).
    #[arg(long, default_value = "data/names.txt")]
    pub data: PathBuf,
    /// burn backend running the unfolded model.
    #[arg(long, value_enum, default_value_t = BackendArg::Flex)]
    pub backend: BackendArg,
    /// Also record the figures in the model's card (`<model>.card.json`).
    #[arg(long)]
    pub card: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `namegen verify`; exit status 1 when the bound is broken.
pub fn run(args: &VerifyArgs) -> Result<ExitCode, CommandError> {
    let checkpoint = Checkpoint::load(&args.unfolded)?;
    let bytes = super::read(&args.model)?;
    let model = ModelView::parse(&bytes).map_err(|source| CommandError::Model {
        path: args.model.clone(),
        source,
    })?;
    if model.config() != &checkpoint.config || model.vocab() != &checkpoint.vocab {
        return Err(CommandError::Mismatch(format!(
            "{} and {} describe different models (architecture or vocabulary)",
            args.unfolded.display(),
            args.model.display()
        )));
    }
    let dataset = load_dataset(&args.data)?;
    if let Some(hash) = checkpoint.extra.get(keys::DATASET_SHA256)
        && *hash != dataset.sha256
    {
        eprintln!(
            "warning: {} is not the names file the checkpoint was trained on (sha256 differs)",
            args.data.display()
        );
    }
    let split_seed = checkpoint
        .extra
        .get("train.recipe.split_seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let config = checkpoint.config;
    let examples = SplitExamples::new(&dataset, split_seed, config.block_size())?;
    let contexts = ContextSet::new(config.vocab_size(), config.block_size(), 0);
    let report = compare(
        &mut BurnLogits::new(&checkpoint, args.backend.into()),
        &mut SamplerLogits::new(&model),
        config.vocab_size(),
        model.dtype(),
        &contexts,
        &examples.val.contexts,
        &examples.val.targets,
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!("{}: {report}", args.model.display());
    }
    if args.card {
        let path = path_for(&args.model);
        let mut card = ModelCard::load(&path)?;
        card.set_verification(&report);
        card.save(&path)?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
