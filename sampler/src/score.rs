//! Scoring a given name: how likely the model finds it.

use core::fmt;

use namegen_model::vocab::VocabError;
use namegen_model::{END_INDEX, windows};

use crate::forward::{Forward, Logits, TooWide};
use crate::sample::Tally;
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
use crate::sample::log_softmax_at;
#[cfg(feature = "q8")]
use crate::sample::q16::Plain;
use crate::view::ModelView;

/// The longest name [`score`] takes, in characters.
pub const MAX_SCORED_LEN: usize = 256;

/// How likely a name is under the model (temperature 1, nothing masked).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Natural-log likelihood of the characters and the end symbol: the number a drawn name's
    /// `log_likelihood` gives (see [`crate::Name`]).
    pub log_likelihood: f64,
    /// Predictions scored: characters plus the end symbol.
    pub symbols: usize,
}

impl Score {
    /// Per-symbol perplexity, `exp(-log_likelihood / symbols)`: 1 for a certain name, the
    /// vocabulary size for a uniform guess. Comparable across names of different lengths.
    pub fn perplexity(&self) -> f64 {
        libm::exp(-self.log_likelihood / self.symbols as f64)
    }
}

/// Why a name cannot be scored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScoreError {
    /// A character is not in the vocabulary, or the name contains the end symbol or is
    /// longer than [`MAX_SCORED_LEN`].
    Name(VocabError),
    /// The model is wider than the buffers.
    TooWide(TooWide),
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => write!(f, "{e}"),
            Self::TooWide(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ScoreError {}

/// The log-likelihood of `name` followed by the end symbol, with the buffers of `forward`.
pub fn score<const W: usize>(
    model: &ModelView<'_>,
    forward: &mut Forward<W>,
    name: &str,
) -> Result<Score, ScoreError> {
    Forward::<W>::check(model).map_err(ScoreError::TooWide)?;
    let mut encoded = [END_INDEX; MAX_SCORED_LEN];
    let len = model
        .vocab()
        .encode_name(name, &mut encoded)
        .map_err(ScoreError::Name)?;
    let mut tally = Tally::new();
    for (context, target) in windows(&encoded[..len], model.config().block_size()) {
        match forward.run(model, context.ids()) {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Logits::Float(z) => tally.add_float(log_softmax_at(z, target, model.kernels())),
            #[cfg(feature = "q8")]
            Logits::Q16(q) => {
                tally.add_q16(&Plain::of(q, model.kernels()), q[usize::from(target)]);
            }
        }
    }
    Ok(Score {
        log_likelihood: tally.nats(),
        symbols: len + 1,
    })
}
