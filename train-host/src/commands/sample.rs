//! `namegen sample`: names from a folded model, one per line or as JSON with their scores,
//! exactly the names a device prints for the same model, seed and settings.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_sampler::{DEFAULT_BATCH, ModelView, Name, Settings, generate_batched};

use super::CommandError;
use super::train::load_dataset;

/// With `--exclude-training`, give up after this many candidates per requested name.
const MAX_TRIES_PER_NAME: usize = 1000;

/// Flags of `namegen sample`.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// The folded model.
    #[arg(long)]
    pub model: PathBuf,
    /// How many names.
    #[arg(short = 'n', long = "count", default_value_t = 20)]
    pub count: usize,
    /// Divides the logits: below 1 is safer, above 1 wilder, 0 is greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Draw only from the k most likely characters (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Draw only from the most likely characters holding this much probability (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Every name starts with these letters.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The seed: the same seed and settings give the same names everywhere.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Names have at least this many characters.
    #[arg(long, default_value_t = 1)]
    pub min_len: usize,
    /// Names stop (flagged as cut) at this many characters.
    #[arg(long, default_value_t = namegen_sampler::sample::DEFAULT_MAX_LEN)]
    pub max_len: usize,
    /// Skip names that occur in the names file (`--data`).
    #[arg(long)]
    pub exclude_training: bool,
    /// The names file for `--exclude-training`.
    #[arg(long, default_value = "data/names.txt")]
    pub data: PathBuf,
    /// Print a JSON array of {name, log_likelihood, perplexity, cut}.
    #[arg(long)]
    pub json: bool,
}

/// Runs `namegen sample`.
pub fn run(args: &SampleArgs) -> Result<ExitCode, CommandError> {
    let bytes = super::read(&args.model)?;
    let model = ModelView::parse(&bytes).map_err(|source| CommandError::Model {
        path: args.model.clone(),
        source,
    })?;
    let settings = Settings {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        prefix: &args.prefix,
        min_len: args.min_len,
        max_len: args.max_len,
    };
    let known: HashSet<String> = if args.exclude_training {
        load_dataset(&args.data)?.names.into_iter().collect()
    } else {
        HashSet::new()
    };
    let mut names: Vec<Name> = Vec::with_capacity(args.count);
    let mut next = 0u64;
    let budget = (args.count * MAX_TRIES_PER_NAME) as u64;
    while names.len() < args.count {
        if next >= budget.max(1) {
            return Err(CommandError::Mismatch(format!(
                "only {} of {} names are new after {next} tries; relax the settings",
                names.len(),
                args.count
            )));
        }
        let wanted = if known.is_empty() {
            args.count - names.len()
        } else {
            DEFAULT_BATCH
        };
        let batch = generate_batched(&model, &settings, next, wanted, DEFAULT_BATCH)?;
        next += wanted as u64;
        let fresh = batch
            .into_iter()
            .filter(|n| !known.contains(n.text.as_str()));
        names.extend(fresh.take(args.count - names.len()));
    }
    if args.json {
        let rows: Vec<_> = names.iter().map(name_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        names.iter().for_each(|n| println!("{}", n.text));
    }
    Ok(ExitCode::SUCCESS)
}

fn name_json(name: &Name) -> serde_json::Value {
    let symbols = name.chars + usize::from(!name.cut);
    serde_json::json!({
        "name": name.text.as_str(),
        "log_likelihood": name.log_likelihood,
        "perplexity": (-name.log_likelihood / symbols as f64).exp(),
        "cut": name.cut,
    })
}
