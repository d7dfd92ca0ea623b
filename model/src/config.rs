//! The architecture: how many characters of context, how wide the embedding, how many hidden
//! layers of which width, and how many symbols.
//!
//! The network is makemore part 3's: `block_size` symbols are embedded (`vocab_size x
//! embed_dim`), concatenated, and pushed through one Linear -> BatchNorm -> Tanh block per
//! hidden width, then a Linear -> BatchNorm to `vocab_size` logits. Linear layer `i` maps
//! [`ModelConfig::layer_dims`]`(i)`; the last one is the output layer.

use core::fmt;

use crate::vocab::MAX_VOCAB;

/// The most hidden layers a config may have.
pub const MAX_HIDDEN_LAYERS: usize = 8;

/// The longest context a config may have.
pub const MAX_BLOCK_SIZE: usize = 16;

/// The widest layer (input or output) a config may have. Bounds the size arithmetic of files
/// read from outside so that it cannot overflow, even on 32-bit targets.
pub const MAX_WIDTH: usize = 4096;

/// Why a config is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// `block_size` is 0 or above [`MAX_BLOCK_SIZE`].
    BlockSize(usize),
    /// `embed_dim` is 0 or makes the first layer wider than [`MAX_WIDTH`].
    EmbedDim(usize),
    /// No hidden layers, or more than [`MAX_HIDDEN_LAYERS`].
    HiddenLayers(usize),
    /// A hidden width is 0 or above [`MAX_WIDTH`].
    HiddenWidth {
        /// Which hidden layer.
        layer: usize,
        /// Its width.
        width: usize,
    },
    /// `vocab_size` is below 2 or above [`MAX_VOCAB`].
    VocabSize(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BlockSize(n) => write!(f, "block size {n} is not in 1..={MAX_BLOCK_SIZE}"),
            Self::EmbedDim(n) => write!(
                f,
                "embedding width {n} is 0 or makes the input wider than {MAX_WIDTH}"
            ),
            Self::HiddenLayers(n) => {
                write!(f, "{n} hidden layers is not in 1..={MAX_HIDDEN_LAYERS}")
            }
            Self::HiddenWidth { layer, width } => {
                write!(
                    f,
                    "hidden layer {layer} has width {width}, not in 1..={MAX_WIDTH}"
                )
            }
            Self::VocabSize(n) => write!(f, "vocabulary size {n} is not in 2..={MAX_VOCAB}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// A validated architecture. Fields are private so that every instance is valid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModelConfig {
    block_size: usize,
    embed_dim: usize,
    hidden: [usize; MAX_HIDDEN_LAYERS],
    n_hidden: usize,
    vocab_size: usize,
}

/// makemore part 3 with the 27-symbol a-z vocabulary.
impl Default for ModelConfig {
    fn default() -> Self {
        Self::makemore(27)
    }
}

impl ModelConfig {
    /// Builds and validates a config. A `const fn`, so that a firmware can hold its model's
    /// config, and the view built from it, in flash.
    pub const fn new(
        block_size: usize,
        embed_dim: usize,
        hidden: &[usize],
        vocab_size: usize,
    ) -> Result<Self, ConfigError> {
        if block_size < 1 || block_size > MAX_BLOCK_SIZE {
            return Err(ConfigError::BlockSize(block_size));
        }
        if embed_dim == 0 || embed_dim > MAX_WIDTH / block_size {
            return Err(ConfigError::EmbedDim(embed_dim));
        }
        if hidden.is_empty() || hidden.len() > MAX_HIDDEN_LAYERS {
            return Err(ConfigError::HiddenLayers(hidden.len()));
        }
        let mut layer = 0;
        while layer < hidden.len() {
            let width = hidden[layer];
            if width < 1 || width > MAX_WIDTH {
                return Err(ConfigError::HiddenWidth { layer, width });
            }
            layer += 1;
        }
        if vocab_size < 2 || vocab_size > MAX_VOCAB {
            return Err(ConfigError::VocabSize(vocab_size));
        }
        let mut widths = [0; MAX_HIDDEN_LAYERS];
        widths.split_at_mut(hidden.len()).0.copy_from_slice(hidden);
        Ok(Self {
            block_size,
            embed_dim,
            hidden: widths,
            n_hidden: hidden.len(),
            vocab_size,
        })
    }

    /// makemore part 3: 3 symbols of context, 10-wide embedding, 5 hidden layers of 100.
    pub fn makemore(vocab_size: usize) -> Self {
        let vocab_size = vocab_size.clamp(2, MAX_VOCAB);
        match Self::new(3, 10, &[100; 5], vocab_size) {
            Ok(config) => config,
            Err(_) => unreachable!("makemore's sizes are within every limit"),
        }
    }

    /// The same architecture for another vocabulary size.
    pub fn with_vocab_size(&self, vocab_size: usize) -> Result<Self, ConfigError> {
        Self::new(self.block_size, self.embed_dim, self.hidden(), vocab_size)
    }

    /// Symbols of context.
    pub const fn block_size(&self) -> usize {
        self.block_size
    }

    /// Width of one symbol's embedding.
    pub const fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// Width of the concatenated embeddings, the first layer's input.
    pub const fn input_width(&self) -> usize {
        self.block_size * self.embed_dim
    }

    /// The hidden layers' widths.
    pub const fn hidden(&self) -> &[usize] {
        self.hidden.split_at(self.n_hidden).0
    }

    /// Symbols in the vocabulary, the output layer's width.
    pub const fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Linear layers: one per hidden width plus the output layer.
    pub const fn n_layers(&self) -> usize {
        self.n_hidden + 1
    }

    /// `(inputs, outputs)` of Linear layer `layer`; `None` past the output layer.
    pub const fn layer_dims(&self, layer: usize) -> Option<(usize, usize)> {
        let inputs = match layer {
            0 => self.input_width(),
            _ if layer <= self.n_hidden => self.hidden[layer - 1],
            _ => return None,
        };
        let outputs = if layer < self.n_hidden {
            self.hidden[layer]
        } else {
            self.vocab_size
        };
        Some((inputs, outputs))
    }

    /// The widest activation (layer input or output): what a forward pass buffer must hold.
    pub fn max_width(&self) -> usize {
        self.hidden()
            .iter()
            .copied()
            .fold(self.input_width().max(self.vocab_size), usize::max)
    }

    /// Trainable parameters of the unfolded model: embedding, Linear weights, BatchNorm
    /// gamma and beta (running statistics are buffers, not parameters).
    pub fn unfolded_parameters(&self) -> usize {
        self.vocab_size * self.embed_dim
            + self
                .linear_layers()
                .map(|(i, o)| i * o + 2 * o)
                .sum::<usize>()
    }

    /// Numbers in the folded model: embedding, Linear weights and biases.
    pub fn folded_parameters(&self) -> usize {
        self.vocab_size * self.embed_dim
            + self.linear_layers().map(|(i, o)| i * o + o).sum::<usize>()
    }

    fn linear_layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.n_layers()).filter_map(|layer| self.layer_dims(layer))
    }
}

/// Writes widths as the metadata form `100,100,100`; read back by
/// [`crate::format::parse_config`].
pub struct WidthList<'a>(pub &'a [usize]);

impl fmt::Display for WidthList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, width) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{width}")?;
        }
        Ok(())
    }
}
