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
use crate::trainer::Backend;
use crate::verify::{BurnLogits, ContextSet, SamplerLogits, compare};
use namegen_files::checkpoint::Checkpoint;
use namegen_files::dataset::SplitExamples;
use namegen_files::output::Outputs;

/// Flags of `namegen verify`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct VerifyArgs {
    /// The unfolded checkpoint the model was exported from.
    #[arg(long)]
    pub unfolded: PathBuf,
    /// The folded model.
    #[arg(long)]
    pub model: PathBuf,
    /// The names file the checkpoint was trained on (for the validation loss).
    #[arg(long, default_value = super::DEFAULT_DATA)]
    pub data: PathBuf,
    /// burn backend running the unfolded model.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Also record the figures in the model's card (`<model>.card.json`).
    #[arg(long)]
    pub card: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `namegen verify`; exit status 1 when the bound is broken.
pub fn run(args: &VerifyArgs) -> Result<ExitCode, CommandError> {
    let card_path = path_for(&args.model);
    let mut outputs = Outputs::new();
    for input in [&args.unfolded, &args.model, &args.data] {
        outputs.input(input);
    }
    if args.card {
        outputs.output(&card_path)?;
    }
    // Read before the work, so that a missing or broken card is found at once.
    let card = args.card.then(|| ModelCard::load(&card_path)).transpose()?;
    let checkpoint = Checkpoint::load(&args.unfolded)?;
    let bytes = super::read_model(&args.model)?;
    let model = ModelView::parse(&bytes).map_err(|source| CommandError::Model {
        path: args.model.clone(),
        source,
    })?;
    if model.config() != &checkpoint.config || model.vocab().to_vocabulary() != checkpoint.vocab {
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
        crate::note!(
            "warning: {} is not the names file the checkpoint was trained on (sha256 differs)",
            args.data.display()
        );
    }
    if let Some((key, in_model, in_checkpoint)) = provenance_difference(&bytes, &checkpoint) {
        crate::note!(
            "warning: {} was not exported from {}: their provenance differs ({key} is {in_model} \
             in the model, {in_checkpoint} in the checkpoint), so a FAIL below says only that \
             they are different models",
            args.model.display(),
            args.unfolded.display()
        );
    }
    let split_seed = checkpoint
        .extra
        .get(keys::TRAIN_SPLIT_SEED)
        .and_then(|s| s.parse().ok())
        .unwrap_or(namegen_model::split::DEFAULT_SEED);
    let config = checkpoint.config;
    let examples = SplitExamples::new(&dataset, split_seed, config.block_size())?;
    let contexts = ContextSet::new(config.vocab_size(), config.block_size(), 0);
    crate::interrupt::check()?;
    crate::note!(
        "verifying {} on {} contexts",
        args.model.display(),
        contexts.len()
    );
    let report = compare(
        &mut BurnLogits::new(&checkpoint, args.backend),
        &mut SamplerLogits::new(&model),
        config.vocab_size(),
        model.dtype(),
        &contexts,
        &examples.val.contexts,
        &examples.val.targets,
    );
    crate::interrupt::check()?;
    if let Some(mut card) = card {
        card.set_verification(&report);
        outputs.write(&card_path, &card.to_bytes())?;
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )?;
    } else {
        crate::outln!("{}: {report}", args.model.display())?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first `provenance.*` key that the folded model's metadata and the checkpoint both hold
/// with different values (the writer aside: export writes its own), as `(key, in the model,
/// in the checkpoint)`: a model exported from another training run.
fn provenance_difference(
    model: &[u8],
    checkpoint: &Checkpoint,
) -> Option<(String, String, String)> {
    let (_, header) = safetensors::SafeTensors::read_metadata(model).ok()?;
    let metadata = header.metadata().as_ref()?;
    // In the checkpoint's (sorted) order, so that the same files always name the same key.
    crate::export::provenance(checkpoint)
        .into_iter()
        .find_map(|(key, in_checkpoint)| {
            let in_model = metadata.get(&key)?;
            (in_checkpoint != *in_model).then(|| (key, in_model.clone(), in_checkpoint))
        })
}
