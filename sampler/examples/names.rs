//! The sampler as a program that depends on it uses it: load a folded model from a file, draw
//! names with settings, and score a name.
//!
//! ```sh
//! cargo run -p namegen-sampler --example names -- [MODEL] [NAME]
//! ```
//!
//! `MODEL` defaults to the repository's `data/model-f32.safetensors`, `NAME` to `emma`.

use std::error::Error;

use namegen_sampler::{DefaultSampler, Forward, ModelView, Settings, score};

/// The shipped default model, found from this crate's directory.
const DEFAULT_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/model-f32.safetensors");

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let to_score = args.next().unwrap_or_else(|| "emma".to_owned());

    // The whole file in memory; the view checks it once and reads the weights where they are.
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let model = ModelView::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let config = model.config();
    println!(
        "{path}: {} model, {} symbols, context {}",
        model.dtype(),
        config.vocab_size(),
        config.block_size()
    );

    // Ten names of seed 42, a little safer than the model itself: the same ten on every target.
    let settings = Settings {
        temperature: 0.8,
        top_k: 10,
        seed: 42,
        ..Settings::default()
    };
    for name in DefaultSampler::new(&model, settings)?.take(10) {
        println!("{:<16} {:8.3} nats", name.text, name.log_likelihood);
    }

    // How likely the model finds a name of the user's.
    let mut forward: Forward = Forward::new();
    let scored = score(&model, &mut forward, &to_score)?;
    println!(
        "{to_score}: {:.3} nats, perplexity {:.2} per symbol",
        scored.log_likelihood,
        scored.perplexity()
    );
    Ok(())
}
