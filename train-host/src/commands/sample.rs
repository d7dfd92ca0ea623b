//! `namegen sample`: names from a folded model, one per line or as JSON with their scores,
//! exactly the names a device prints for the same model, seed and settings.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_sampler::{BatchOptions, ModelView, Name, Settings, generate_batched};
use rand::TryRng;
use rand::rngs::SysRng;

use super::CommandError;
use super::train::load_dataset;

/// With `--exclude-training`, give up after this many candidates per requested name.
const MAX_TRIES_PER_NAME: u64 = 1000;

/// How many names `namegen sample` and `namegen pipeline` print unless told otherwise.
pub const DEFAULT_COUNT: usize = 20;

/// Flags of `namegen sample`; the sampling settings default to the sampler's own
/// [`Settings::default`].
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SampleArgs {
    /// The folded model.
    #[arg(long)]
    pub model: PathBuf,
    /// How many names.
    #[arg(short = 'n', long = "count", default_value_t = DEFAULT_COUNT)]
    pub count: usize,
    /// Divides the logits: below 1 is safer, above 1 wilder, 0 is greedy.
    #[arg(long, default_value_t = Settings::default().temperature)]
    pub temperature: f32,
    /// Draw only from the k most likely characters (0: all).
    #[arg(long, default_value_t = Settings::default().top_k)]
    pub top_k: usize,
    /// Draw only from the most likely characters holding this much probability (1: all).
    #[arg(long, default_value_t = Settings::default().top_p)]
    pub top_p: f32,
    /// Every name starts with these letters.
    #[arg(long, default_value_t = Settings::default().prefix.to_owned())]
    pub prefix: String,
    /// The seed: the same seed and settings give the same names everywhere. Without it, a
    /// fresh seed from the operating system, printed to stderr as `seed: N`; N is the number
    /// `--seed` takes, so `--seed N` prints the same names again.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Names have at least this many characters.
    #[arg(long, default_value_t = Settings::default().min_len)]
    pub min_len: usize,
    /// Names stop (flagged as cut) at this many characters.
    #[arg(long, default_value_t = Settings::default().max_len)]
    pub max_len: usize,
    /// Skip names that occur in the names file (`--data`).
    #[arg(long)]
    pub exclude_training: bool,
    /// The names file for `--exclude-training`.
    #[arg(long, default_value = super::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Print a JSON array of {name, log_likelihood, perplexity, cut}.
    #[arg(long)]
    pub json: bool,
}

impl SampleArgs {
    /// `namegen sample --model <model>`: every other flag at its default (so a fresh seed).
    pub fn new(model: PathBuf) -> Self {
        let settings = Settings::default();
        Self {
            model,
            count: DEFAULT_COUNT,
            temperature: settings.temperature,
            top_k: settings.top_k,
            top_p: settings.top_p,
            prefix: settings.prefix.to_owned(),
            seed: None,
            min_len: settings.min_len,
            max_len: settings.max_len,
            exclude_training: false,
            data: super::DEFAULT_DATA.into(),
            json: false,
        }
    }
}

/// Names made per call of the batched generator: what one call keeps in memory, whatever
/// `--count` is (its logit cache gains with more names per call; see the sampler's
/// `generate_batched`). Any value gives the same names.
const NAMES_PER_CALL: usize = 4096;

/// Runs `namegen sample`: names are printed as they are made, in constant memory for any
/// count; with `--exclude-training` the candidates found in the names file are skipped.
pub fn run(args: &SampleArgs) -> Result<ExitCode, CommandError> {
    let bytes = super::read_model(&args.model)?;
    let mut model = ModelView::parse(&bytes).map_err(|source| CommandError::Model {
        path: args.model.clone(),
        source,
    })?;
    // Once for every call below, which would otherwise pack a q8 model's weights each time.
    model.pack_weights();
    let settings = Settings {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: seed(args.seed)?,
        prefix: &args.prefix,
        min_len: args.min_len,
        max_len: args.max_len,
    };
    let known: HashSet<String> = if args.exclude_training {
        load_dataset(&args.data)?.names.into_iter().collect()
    } else {
        HashSet::new()
    };
    let budget = (args.count as u64)
        .saturating_mul(MAX_TRIES_PER_NAME)
        .max(1);
    let mut json = NamePrinter::new(args.json);
    let (mut printed, mut next) = (0usize, 0u64);
    while printed < args.count {
        crate::interrupt::check()?;
        if next >= budget {
            return Err(CommandError::Mismatch(format!(
                "only {printed} of {} names are new after {next} tries; relax the settings",
                args.count
            )));
        }
        let wanted = if known.is_empty() {
            (args.count - printed).min(NAMES_PER_CALL)
        } else {
            NAMES_PER_CALL
        };
        let options = BatchOptions {
            first: next,
            ..BatchOptions::new(wanted)
        };
        let batch = generate_batched(&model, &settings, &options)?;
        next += wanted as u64;
        let fresh: Vec<Name> = batch
            .into_iter()
            .filter(|n| !known.contains(n.text.as_str()))
            .take(args.count - printed)
            .collect();
        printed += fresh.len();
        json.print(&fresh)?;
    }
    json.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `seed`, or a fresh one from the operating system, printed to stderr so that the run can be
/// repeated with `--seed`.
fn seed(seed: Option<u64>) -> Result<u64, CommandError> {
    if let Some(seed) = seed {
        return Ok(seed);
    }
    let fresh = SysRng.try_next_u64()?;
    crate::note!("seed: {fresh} (--seed {fresh} gives these names again)");
    Ok(fresh)
}

/// Prints names as they come: one per line, or as one pretty-printed JSON array of
/// [`name_json`] objects written element by element.
struct NamePrinter {
    json: bool,
    elements: usize,
}

impl NamePrinter {
    fn new(json: bool) -> Self {
        Self { json, elements: 0 }
    }

    fn print(&mut self, names: &[Name]) -> Result<(), CommandError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for name in names {
            if self.json {
                let object = serde_json::to_string_pretty(&name_json(name)).unwrap_or_default();
                text.push_str(if self.elements == 0 { "[\n  " } else { ",\n  " });
                text.push_str(&object.replace('\n', "\n  "));
            } else {
                text.push_str(&name.text);
                text.push('\n');
            }
            self.elements += 1;
        }
        // A JSON element's line end comes with the next element's comma, or with the end.
        crate::console::out(format_args!("{text}"))?;
        Ok(())
    }

    /// Closes the JSON array (an empty one when no name came).
    fn finish(self) -> Result<(), CommandError> {
        if self.json {
            crate::outln!("{}", if self.elements == 0 { "[]" } else { "\n]" })?;
        }
        Ok(())
    }
}

/// One name as a JSON object, with its log-likelihood and perplexity per symbol.
fn name_json(name: &Name) -> serde_json::Value {
    let symbols = name.chars + usize::from(!name.cut);
    serde_json::json!({
        "name": name.text.as_str(),
        "log_likelihood": name.log_likelihood,
        "perplexity": (-name.log_likelihood / symbols as f64).exp(),
        "cut": name.cut,
    })
}
