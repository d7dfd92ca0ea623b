//! `namegen score`: how likely a folded model finds given names: the log-likelihood and the
//! per-symbol perplexity, to rank or filter names or tell a real-looking one from noise.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use namegen_model::config::MAX_WIDTH;
use namegen_sampler::{Forward, ModelView, score};

use super::CommandError;

/// Flags of `namegen score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// The folded model.
    #[arg(long)]
    pub model: PathBuf,
    /// Print a JSON array of {name, log_likelihood, perplexity}.
    #[arg(long)]
    pub json: bool,
    /// The names to score.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Runs `namegen score`: one line per name, `name  log-likelihood  perplexity`.
pub fn run(args: &ScoreArgs) -> Result<ExitCode, CommandError> {
    let bytes = super::read_model(&args.model)?;
    let mut model = ModelView::parse(&bytes).map_err(|source| CommandError::Model {
        path: args.model.clone(),
        source,
    })?;
    model.pack_weights();
    let mut forward = Box::new(Forward::<MAX_WIDTH>::new());
    let mut rows = Vec::new();
    for name in &args.names {
        crate::interrupt::check()?;
        let scored = score(&model, &mut forward, name).map_err(|source| CommandError::Score {
            name: name.clone(),
            source,
        })?;
        rows.push((name, scored));
    }
    if args.json {
        let json: Vec<_> = rows
            .iter()
            .map(|(name, s)| {
                serde_json::json!({
                    "name": name,
                    "log_likelihood": s.log_likelihood,
                    "perplexity": s.perplexity(),
                })
            })
            .collect();
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        )?;
    } else {
        let width = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        crate::outln!("{:width$}  log-likelihood  perplexity", "name")?;
        for (name, s) in rows {
            crate::outln!(
                "{name:width$}  {:>14.4}  {:>10.3}",
                s.log_likelihood,
                s.perplexity()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
