//! The forward pass of a folded model with fixed buffers: embed the context, then for each
//! Linear layer `y = W x + b` and `tanh` on every layer but the last.
//!
//! Every float operation happens in the same order on every target (see
//! [`crate::tensor::dot_f32`] for the dot product), and `tanh` is `libm::tanhf`, a software
//! implementation, so x86_64, WASM and Cortex-M compute the same logits bit for bit.

use core::fmt;

use crate::view::ModelView;

/// The widest layer the default buffers hold: makemore part 3's 100 hidden units (its input,
/// 3 x 10, and output, 27, are narrower).
pub const DEFAULT_WIDTH: usize = 100;

/// A model does not fit a [`Forward`]'s buffers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TooWide {
    /// The widest activation the model needs ([`namegen_model::ModelConfig::max_width`]).
    pub needed: usize,
    /// The buffers' width.
    pub capacity: usize,
}

impl fmt::Display for TooWide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the model needs activation buffers of {} values, these hold {}",
            self.needed, self.capacity
        )
    }
}

impl core::error::Error for TooWide {}

/// Two activation buffers of `W` f32 each: all the RAM a forward pass uses.
#[derive(Clone, Debug)]
pub struct Forward<const W: usize = DEFAULT_WIDTH> {
    x: [f32; W],
    y: [f32; W],
}

impl<const W: usize> Default for Forward<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Forward<W> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self {
            x: [0.0; W],
            y: [0.0; W],
        }
    }

    /// Checks that `model` fits these buffers.
    pub fn check(model: &ModelView<'_>) -> Result<(), TooWide> {
        let needed = model.config().max_width();
        if needed > W {
            return Err(TooWide {
                needed,
                capacity: W,
            });
        }
        Ok(())
    }

    /// The `vocab_size` logits after `context` (`block_size` symbol indices, oldest first).
    ///
    /// The model must have passed [`Forward::check`] and the context must hold valid
    /// indices; [`crate::Sampler`] and [`crate::score`] guarantee both. Otherwise this
    /// panics (slice bounds), it never reads outside the buffers.
    pub fn logits(&mut self, model: &ModelView<'_>, context: &[u8]) -> &[f32] {
        let config = model.config();
        let dim = config.embed_dim();
        let embedding = model.embedding();
        for (slot, &symbol) in self.x.chunks_exact_mut(dim).zip(context) {
            embedding.row_into(usize::from(symbol), slot);
        }
        let mut width = config.input_width();
        let last = config.n_layers() - 1;
        for (index, layer) in model.layers().enumerate() {
            let rows = layer.weight.rows();
            let x = &self.x[..width];
            for (row, out) in self.y[..rows].iter_mut().enumerate() {
                let value = layer.weight.row_dot(row, x) + layer.bias.get(row);
                *out = if index == last {
                    value
                } else {
                    libm::tanhf(value)
                };
            }
            core::mem::swap(&mut self.x, &mut self.y);
            width = rows;
        }
        &self.x[..width]
    }
}
