//! A folded model without its JSON header: the few values the header holds, as plain data a
//! build script can write out as Rust, and the tensors' bytes one after another.
//!
//! [`ModelView::parse`] needs a JSON reader and a dozen checks (~13 KB of code on a Cortex-M);
//! a 64 KB part cannot hold them next to its 50 KB of weights. The split: a build script
//! validates the whole file on the host with [`ModelView::parse`], writes [`ModelView::tensors`]
//! one after another as the data to embed and the config, vocabulary and dtype as a
//! [`Layout`]; the device rebuilds the same view with [`ModelView::from_layout`], which checks
//! only what is cheap (the config, the vocabulary, the data's length).

use core::fmt;

use namegen_model::config::{ConfigError, MAX_HIDDEN_LAYERS};
use namegen_model::q8::TANH_TABLE_LEN;
use namegen_model::vocab::VocabError;
use namegen_model::{Dtype, ModelConfig, TensorName};

use crate::kernels::Kernels;
use crate::symbols::Symbols;
use crate::tensor::{Matrix, Vector};
use crate::view::{Layer, ModelView, Requant};

/// What a folded model's header says: with the tensors' bytes in the order of
/// [`namegen_model::format::folded_tensors`] (what [`ModelView::tensors`] yields, each
/// directly after the one before), enough for [`ModelView::from_layout`] to view the model.
///
/// The fields are those of the file's metadata, so a build script can write one out as a Rust
/// constant from a [`ModelView`]'s [`ModelView::config`], [`ModelView::vocab`] and
/// [`ModelView::dtype`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout<'l> {
    /// How the embedding and the Linear weights are stored.
    pub dtype: Dtype,
    /// The vocabulary in index order, [`namegen_model::END`] first (its `Display` form),
    /// which the view borrows.
    pub symbols: &'l str,
    /// Symbols of context.
    pub block_size: usize,
    /// Width of one symbol's embedding.
    pub embed_dim: usize,
    /// The hidden layers' widths.
    pub hidden: &'l [usize],
}

/// Why [`ModelView::from_layout`] refused a layout or its data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayoutError {
    /// The vocabulary is not in the stored form.
    Vocab(VocabError),
    /// The sizes do not make a valid config.
    Config(ConfigError),
    /// This build of the sampler has no kernel for the dtype (its cargo feature is off).
    DtypeNotBuilt(Dtype),
    /// The data is not exactly the tensors the layout calls for.
    DataLength {
        /// Bytes the tensors take.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vocab(e) => write!(f, "{e}"),
            Self::Config(e) => write!(f, "{e}"),
            Self::DtypeNotBuilt(dtype) => write!(
                f,
                "this sampler was built without the {dtype} kernel (cargo feature \"{dtype}\")"
            ),
            Self::DataLength { expected, found } => write!(
                f,
                "the tensors take {expected} bytes, the data holds {found}"
            ),
        }
    }
}

impl core::error::Error for LayoutError {}

/// The first `len` bytes of `rest`, which moves past them.
const fn take<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let Some((head, tail)) = rest.split_at_checked(len) else {
        return None;
    };
    *rest = tail;
    Some(head)
}

/// Bytes of a `[rows, cols]` matrix of `dtype` and its row scales (i8's). The config's width
/// limits keep this far from overflowing, on 32-bit targets too: at most 9 layers of
/// 4096 x 4096 f32.
const fn matrix_bytes(dtype: Dtype, rows: usize, cols: usize) -> usize {
    let scale_bytes = if matches!(dtype, Dtype::I8) { 4 } else { 0 };
    rows * (cols * dtype.size() + scale_bytes)
}

/// The `[rows, cols]` matrix of `dtype` at the start of `rest` (its row scales after it for
/// i8), which moves past them.
const fn matrix<'a>(
    rest: &mut &'a [u8],
    dtype: Dtype,
    rows: usize,
    cols: usize,
) -> Option<Matrix<'a>> {
    let Some(values) = take(rest, rows * cols * dtype.size()) else {
        return None;
    };
    let Some(scales) = take(rest, matrix_bytes(dtype, rows, cols) - values.len()) else {
        return None;
    };
    let Some(scales) = Vector::new(scales) else {
        return None;
    };
    Matrix::new(rows, cols, dtype, values, scales)
}

impl<'a> ModelView<'a> {
    /// Views `data`, the tensors of `layout` one after another (see [`Layout`]), in place.
    ///
    /// Checks the vocabulary, the config, that the dtype's kernel is built in and that `data`
    /// is exactly as long as the tensors, so every tensor view has its shape and no input
    /// can make the sampler panic or read out of bounds. The values are not checked (finite,
    /// scales positive, i8 weights above -128, small enough that no logit can overflow):
    /// that is [`ModelView::parse`]'s work, to be done on the file `data` came from, for
    /// example by a build script, and this trusts it was done: on a part too small for the
    /// JSON reader, those checks would take flash it does not have (the overflow bound alone
    /// is f64 arithmetic, which a Cortex-M3 emulates in software). Unchecked values can only
    /// make the names meaningless. Allocates and copies nothing: the view borrows `data` and
    /// the layout's symbols. The view's kernels are [`Kernels::detect`]'s.
    pub fn from_layout(layout: &Layout<'a>, data: &'a [u8]) -> Result<Self, LayoutError> {
        Self::from_layout_portable(layout, data).map(|view| view.with_kernels(Kernels::detect()))
    }

    /// [`ModelView::from_layout`] as a `const fn`, whose view computes with
    /// [`Kernels::Portable`] (or the kernels a wasm32 build is compiled with) on every CPU.
    /// Evaluated at compile time, it puts the whole view in flash and refuses a bad layout
    /// in the build, as `sampler/firmware` does: no RAM, no code and no run-time check for it
    /// on the device.
    pub const fn from_layout_portable(
        layout: &Layout<'a>,
        data: &'a [u8],
    ) -> Result<Self, LayoutError> {
        let vocab = match Symbols::from_stored(layout.symbols) {
            Ok(vocab) => vocab,
            Err(e) => return Err(LayoutError::Vocab(e)),
        };
        let (block_size, embed_dim) = (layout.block_size, layout.embed_dim);
        let config = match ModelConfig::new(block_size, embed_dim, layout.hidden, vocab.len()) {
            Ok(config) => config,
            Err(e) => return Err(LayoutError::Config(e)),
        };
        let dtype = layout.dtype;
        if !Matrix::is_built(dtype) {
            return Err(LayoutError::DtypeNotBuilt(dtype));
        }
        // q8: the `tanh` table after the embedding; per row an int16 multiplier after the
        // `bias_shift` word (int32, where the float dtypes have their f32 bias).
        let integer = matches!(dtype, Dtype::Q8);
        let (table_bytes, requant_bytes) = if integer { (TANH_TABLE_LEN, 2) } else { (0, 0) };
        let vocab_size = config.vocab_size();
        let mut expected = matrix_bytes(dtype, vocab_size, embed_dim) + table_bytes;
        let mut i = 0;
        while let Some((inputs, outputs)) = config.layer_dims(i) {
            expected += matrix_bytes(dtype, outputs, inputs) + (4 + requant_bytes) * outputs;
            i += 1;
        }
        let wrong_length = LayoutError::DataLength {
            expected,
            found: data.len(),
        };
        if data.len() != expected {
            return Err(wrong_length);
        }

        // The length is right, so no step below can fail; they stay checked rather than trusted.
        let mut rest = data;
        let Some(embedding) = matrix(&mut rest, dtype, vocab_size, embed_dim) else {
            return Err(wrong_length);
        };
        let tanh_table = if integer {
            let Some((table, tail)) = rest.split_first_chunk::<TANH_TABLE_LEN>() else {
                return Err(wrong_length);
            };
            rest = tail;
            Some(table)
        } else {
            None
        };
        let mut layers = [None; MAX_HIDDEN_LAYERS + 1];
        let mut i = 0;
        while let Some((inputs, outputs)) = config.layer_dims(i) {
            let Some(weight) = matrix(&mut rest, dtype, outputs, inputs) else {
                return Err(wrong_length);
            };
            // The f32 biases, or q8's `bias_shift` words: 4 bytes a row either way.
            let Some(bias) = take(&mut rest, 4 * outputs) else {
                return Err(wrong_length);
            };
            layers[i] = Some(if integer {
                let Some(multiplier) = take(&mut rest, 2 * outputs) else {
                    return Err(wrong_length);
                };
                let Some(requant) = Requant::new(outputs, bias, multiplier) else {
                    return Err(wrong_length);
                };
                Layer {
                    weight,
                    bias: Vector::EMPTY,
                    requant,
                }
            } else {
                let Some(bias) = Vector::new(bias) else {
                    return Err(wrong_length);
                };
                Layer {
                    weight,
                    bias,
                    requant: Requant::EMPTY,
                }
            });
            i += 1;
        }
        Ok(ModelView {
            config,
            vocab,
            dtype,
            embedding,
            layers,
            tanh_table,
            #[cfg(any(
                all(feature = "std", target_arch = "x86_64"),
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            packed: None,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            kernels: Kernels::Portable,
        })
    }

    /// Every tensor's bytes, in place, in the order of
    /// [`namegen_model::format::folded_tensors`]: written one after another, the data
    /// [`ModelView::from_layout`] takes.
    pub fn tensors(&self) -> impl Iterator<Item = (TensorName, &'a [u8])> + '_ {
        let scaled = self.dtype == Dtype::I8;
        let embedding = [
            Some((TensorName::Embedding, self.embedding.bytes())),
            scaled.then(|| (TensorName::EmbeddingScale, self.embedding.scales().bytes())),
            self.tanh_table
                .map(|table| (TensorName::TanhTable, table.as_slice())),
        ];
        let layers = self.layers().enumerate().flat_map(move |(i, layer)| {
            let integer = self.tanh_table.is_some();
            let [bias_shift, multiplier] = layer.requant.bytes();
            [
                Some((TensorName::Weight(i), layer.weight.bytes())),
                scaled.then(|| (TensorName::Scale(i), layer.weight.scales().bytes())),
                Some(if integer {
                    (TensorName::BiasShift(i), bias_shift)
                } else {
                    (TensorName::Bias(i), layer.bias.bytes())
                }),
                integer.then_some((TensorName::Multiplier(i), multiplier)),
            ]
        });
        embedding.into_iter().chain(layers).flatten()
    }
}
