//! The validated, zero-copy view of a folded model file: what the forward pass runs on.

use namegen_model::config::MAX_HIDDEN_LAYERS;
use namegen_model::{Dtype, ModelConfig, Vocabulary};

use crate::tensor::{Matrix, Vector};

/// One folded Linear layer: `y = W x + b`.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// `[out, in]`.
    pub weight: Matrix<'a>,
    /// `[out]`.
    pub bias: Vector<'a>,
}

/// A folded model whose bytes have been validated; borrows them, copies no weights.
///
/// Built by [`ModelView::parse`], which checks everything (shapes agree with the config, the
/// vocabulary matches the embedding, values finite, scales positive), or by
/// [`ModelView::from_layout`] for data a build script took from a file `parse` accepted, which
/// checks the shapes only. Either way every tensor has the shape its config calls for, so the
/// sampler never reads out of bounds.
#[derive(Clone, Debug)]
pub struct ModelView<'a> {
    pub(crate) config: ModelConfig,
    pub(crate) vocab: Vocabulary,
    pub(crate) dtype: Dtype,
    pub(crate) embedding: Matrix<'a>,
    pub(crate) layers: [Option<Layer<'a>>; MAX_HIDDEN_LAYERS + 1],
}

impl<'a> ModelView<'a> {
    /// The architecture, from the file's metadata.
    pub const fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The symbols, from the file's metadata.
    pub const fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    /// How the weights are stored.
    pub const fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// `[vocab, embed_dim]`.
    pub const fn embedding(&self) -> &Matrix<'a> {
        &self.embedding
    }

    /// The Linear layers in order, the output layer last.
    pub fn layers(&self) -> impl Iterator<Item = &Layer<'a>> {
        self.layers.iter().flatten()
    }
}
