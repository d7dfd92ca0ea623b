//! Plain f64 reference forward passes of the unfolded eval-mode model and of the folded
//! model: the yardstick that training, export and every device are checked against.
//!
//! One path through the math, as in llama2.c's `run.c`: look up and concatenate the
//! embeddings, then for each Linear layer `y = W x`, the layer's affine step (BatchNorm with
//! running statistics, or the folded bias), and `tanh` on every layer but the last.

use core::fmt;

use crate::config::ModelConfig;
use crate::fold::BatchNorm;

/// The unfolded model in eval mode, as f64 slices (row-major, Linear weights `[out, in]`).
#[derive(Clone, Copy, Debug)]
pub struct Unfolded<'a> {
    /// The architecture the slices follow.
    pub config: ModelConfig,
    /// `[vocab, embed_dim]`.
    pub embedding: &'a [f64],
    /// One `[out, in]` weight per Linear layer.
    pub weights: &'a [&'a [f64]],
    /// The BatchNorm after each Linear layer.
    pub norms: &'a [BatchNorm<'a>],
}

/// The folded model, as f64 slices (row-major, Linear weights `[out, in]`).
#[derive(Clone, Copy, Debug)]
pub struct Folded<'a> {
    /// The architecture the slices follow.
    pub config: ModelConfig,
    /// `[vocab, embed_dim]`.
    pub embedding: &'a [f64],
    /// One `[out, in]` weight per Linear layer.
    pub weights: &'a [&'a [f64]],
    /// One bias per Linear layer.
    pub biases: &'a [&'a [f64]],
}

/// Why a reference forward pass cannot run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ForwardError {
    /// A slice does not have the length the config asks for.
    Shape,
    /// The context is not `block_size` long, or holds an index outside the vocabulary.
    Context,
    /// The scratch buffer is shorter than [`scratch_len`].
    Scratch,
    /// A BatchNorm cannot be evaluated (negative variance or a non-finite value).
    BatchNorm,
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shape => "a tensor's length does not match the config",
            Self::Context => "the context has the wrong length or an unknown symbol",
            Self::Scratch => "the scratch buffer is too small",
            Self::BatchNorm => "a BatchNorm has a negative variance or a non-finite value",
        })
    }
}

impl core::error::Error for ForwardError {}

/// How many f64s of scratch space a forward pass under `config` needs.
pub fn scratch_len(config: &ModelConfig) -> usize {
    2 * config.max_width()
}

impl Unfolded<'_> {
    /// Writes the `vocab_size` logits for `context` into `logits`.
    pub fn logits(
        &self,
        context: &[u8],
        scratch: &mut [f64],
        logits: &mut [f64],
    ) -> Result<(), ForwardError> {
        let config = &self.config;
        let shapes_ok = self.weights.len() == config.n_layers()
            && self.norms.len() == config.n_layers()
            && weights_fit(config, self.weights)
            && self.norms.iter().enumerate().all(|(i, bn)| {
                let rows = config.layer_dims(i).map_or(0, |(_, o)| o);
                [bn.gamma, bn.beta, bn.running_mean, bn.running_var]
                    .iter()
                    .all(|v| v.len() == rows)
            });
        if !shapes_ok {
            return Err(ForwardError::Shape);
        }
        forward(
            config,
            self.embedding,
            context,
            scratch,
            logits,
            |layer, x, y| {
                matvec(self.weights[layer], x, y);
                let bn = &self.norms[layer];
                for (row, value) in y.iter_mut().enumerate() {
                    let (scale, shift) = bn.affine(row).map_err(|_| ForwardError::BatchNorm)?;
                    *value = scale * *value + shift;
                }
                Ok(())
            },
        )
    }
}

impl Folded<'_> {
    /// Writes the `vocab_size` logits for `context` into `logits`.
    pub fn logits(
        &self,
        context: &[u8],
        scratch: &mut [f64],
        logits: &mut [f64],
    ) -> Result<(), ForwardError> {
        let config = &self.config;
        let shapes_ok = self.weights.len() == config.n_layers()
            && self.biases.len() == config.n_layers()
            && weights_fit(config, self.weights)
            && self
                .biases
                .iter()
                .enumerate()
                .all(|(i, b)| Some(b.len()) == config.layer_dims(i).map(|(_, o)| o));
        if !shapes_ok {
            return Err(ForwardError::Shape);
        }
        forward(
            config,
            self.embedding,
            context,
            scratch,
            logits,
            |layer, x, y| {
                matvec(self.weights[layer], x, y);
                for (value, bias) in y.iter_mut().zip(self.biases[layer]) {
                    *value += bias;
                }
                Ok(())
            },
        )
    }
}

/// `-log softmax(logits)[target]`: the cross-entropy of one example, computed stably.
pub fn cross_entropy(logits: &[f64], target: u8) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.iter().map(|&l| libm::exp(l - max)).sum();
    max + libm::log(sum) - logits[usize::from(target)]
}

fn weights_fit(config: &ModelConfig, weights: &[&[f64]]) -> bool {
    weights
        .iter()
        .enumerate()
        .all(|(i, w)| Some(w.len()) == config.layer_dims(i).map(|(i, o)| i * o))
}

/// The shared path: embed, then each layer's `apply` followed by tanh (but not after the last).
fn forward(
    config: &ModelConfig,
    embedding: &[f64],
    context: &[u8],
    scratch: &mut [f64],
    logits: &mut [f64],
    mut apply: impl FnMut(usize, &[f64], &mut [f64]) -> Result<(), ForwardError>,
) -> Result<(), ForwardError> {
    let (dim, vocab) = (config.embed_dim(), config.vocab_size());
    if embedding.len() != vocab * dim || logits.len() != vocab {
        return Err(ForwardError::Shape);
    }
    if context.len() != config.block_size() || context.iter().any(|&c| usize::from(c) >= vocab) {
        return Err(ForwardError::Context);
    }
    if scratch.len() < scratch_len(config) {
        return Err(ForwardError::Scratch);
    }
    let (mut x, mut y) = scratch.split_at_mut(config.max_width());
    for (slot, &symbol) in x.chunks_exact_mut(dim).zip(context) {
        let row = usize::from(symbol) * dim;
        slot.copy_from_slice(&embedding[row..row + dim]);
    }
    let last = config.n_layers() - 1;
    for layer in 0..=last {
        let Some((inputs, outputs)) = config.layer_dims(layer) else {
            return Err(ForwardError::Shape);
        };
        if layer == last {
            return apply(layer, &x[..inputs], logits);
        }
        apply(layer, &x[..inputs], &mut y[..outputs])?;
        y[..outputs].iter_mut().for_each(|v| *v = libm::tanh(*v));
        core::mem::swap(&mut x, &mut y);
    }
    Ok(())
}

/// `y = W x` for a row-major `[y.len(), x.len()]` matrix.
fn matvec(weight: &[f64], x: &[f64], y: &mut [f64]) {
    for (out, row) in y.iter_mut().zip(weight.chunks_exact(x.len())) {
        *out = row.iter().zip(x).map(|(w, v)| w * v).sum();
    }
}
