//! The validated, zero-copy view of a folded model file: what the forward pass runs on.

use namegen_model::config::MAX_HIDDEN_LAYERS;
use namegen_model::q8::{TANH_TABLE_LEN, split_bias_shift, widen_multiplier};
use namegen_model::{Dtype, ModelConfig};

use crate::kernels::Kernels;
use crate::symbols::Symbols;
use crate::tensor::{Matrix, Vector};

/// One folded Linear layer: `y = W x + b`.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// `[out, in]`.
    pub weight: Matrix<'a>,
    /// `[out]` f32; empty for q8, whose bias is an integer ([`Requant::bias`]).
    pub bias: Vector<'a>,
    /// q8 only (empty otherwise): the integer bias and the per-row requantisation.
    pub requant: Requant<'a>,
}

/// A q8 layer's integers per row, read little-endian from the file's bytes at any alignment:
/// each row's `bias_shift` word (the bias in accumulator units and the shift of
/// [`namegen_model::q8::requantize`], [`namegen_model::q8::split_bias_shift`]) and its 16-bit
/// multiplier. `Default` is empty: the float dtypes have none. Without the `q8` feature it is
/// always empty and takes no memory, so float-only firmware keeps its RAM.
#[derive(Clone, Copy, Debug, Default)]
pub struct Requant<'a> {
    #[cfg(feature = "q8")]
    bias_shift: &'a [u8],
    #[cfg(feature = "q8")]
    multiplier: &'a [u8],
    #[cfg(not(feature = "q8"))]
    empty: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> Requant<'a> {
    /// None: what the float dtypes' layers hold.
    pub(crate) const EMPTY: Self = Self {
        #[cfg(feature = "q8")]
        bias_shift: &[],
        #[cfg(feature = "q8")]
        multiplier: &[],
        #[cfg(not(feature = "q8"))]
        empty: core::marker::PhantomData,
    };

    /// Views the `rows` `bias_shift` words (int32, 4 bytes each) and multipliers (int16, 2
    /// bytes each); `None` unless the lengths are those, and always without the `q8` feature.
    pub const fn new(rows: usize, bias_shift: &'a [u8], multiplier: &'a [u8]) -> Option<Self> {
        let Some(words) = rows.checked_mul(4) else {
            return None;
        };
        let fits = bias_shift.len() == words && multiplier.len() == 2 * rows;
        #[cfg(feature = "q8")]
        return if fits {
            Some(Self {
                bias_shift,
                multiplier,
            })
        } else {
            None
        };
        #[cfg(not(feature = "q8"))]
        {
            let _ = fits;
            None
        }
    }

    /// Rows: the layer's outputs (0 when empty).
    pub const fn rows(&self) -> usize {
        self.bytes()[1].len() / 2
    }

    /// The bias of row `row`, in accumulator units (`-2^23..2^23`). Panics past the end, like
    /// slice indexing.
    pub fn bias(&self, row: usize) -> i32 {
        split_bias_shift(self.word(row)).0
    }

    /// The multiplier of row `row` as [`namegen_model::q8::requantize`] takes it: the stored
    /// 16-bit one times `2^16` ([`widen_multiplier`]). Panics past the end, like slice
    /// indexing.
    pub fn multiplier(&self, row: usize) -> i32 {
        let b = &self.bytes()[1][row * 2..row * 2 + 2];
        widen_multiplier(i16::from_le_bytes([b[0], b[1]]))
    }

    /// The shift of row `row`. Panics past the end, like slice indexing.
    pub fn shift(&self, row: usize) -> i8 {
        split_bias_shift(self.word(row)).1
    }

    /// The bytes of the `bias_shift` words and of the multipliers, in place, in file order.
    pub const fn bytes(&self) -> [&'a [u8]; 2] {
        #[cfg(feature = "q8")]
        return [self.bias_shift, self.multiplier];
        #[cfg(not(feature = "q8"))]
        [&[], &[]]
    }

    /// Row `row`'s little-endian `bias_shift` word.
    fn word(&self, row: usize) -> i32 {
        let b = &self.bytes()[0][row * 4..row * 4 + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// A folded model whose bytes have been validated; borrows them, copies no weights (unless a
/// host asks for a packed copy: `ModelView::pack_weights`, with `std`).
///
/// Built by [`ModelView::parse`], which checks everything (shapes agree with the config, the
/// vocabulary matches the embedding, values finite, scales positive, weights small enough
/// that no logit can overflow), or by [`ModelView::from_layout`] for data a build script took
/// from a file `parse` accepted, which checks the shapes only. Either way every tensor has
/// the shape its config calls for, so the sampler never reads out of bounds.
#[derive(Clone, Debug)]
pub struct ModelView<'a> {
    pub(crate) config: ModelConfig,
    pub(crate) vocab: Symbols<'a>,
    pub(crate) dtype: Dtype,
    pub(crate) embedding: Matrix<'a>,
    pub(crate) layers: [Option<Layer<'a>>; MAX_HIDDEN_LAYERS + 1],
    /// q8 only: the shared `tanh` table, int8 codes as bytes. A view has it exactly when its
    /// dtype is q8, and the forward pass runs the integer network exactly then.
    pub(crate) tanh_table: Option<&'a [u8; TANH_TABLE_LEN]>,
    /// The layers' weights in the AVX2 kernel's order, once [`ModelView::pack_weights`] has
    /// copied them.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    pub(crate) packed: Option<std::sync::Arc<[crate::avx::Packed]>>,
    /// The layers' weights in the SIMD128 kernel's order, in a caller's buffer, once
    /// [`ModelView::pack_weights_into`] has copied them.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) packed: Option<crate::simd128::Packed<'a>>,
    /// The code that computes the layers and the draws: [`Kernels::Avx2`], [`Kernels::Avx2Vnni`]
    /// or [`Kernels::Avx512Vnni`] only if [`Kernels::runs_here`], which the unsafe calls of its
    /// kernels rely on. Other targets have no field: they run [`Kernels::Portable`] alone.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    pub(crate) kernels: Kernels,
}

impl<'a> ModelView<'a> {
    /// The architecture, from the file's metadata.
    pub const fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The symbols, from the file's metadata (or the layout's), borrowed where they are.
    pub const fn vocab(&self) -> Symbols<'a> {
        self.vocab
    }

    /// How the weights are stored.
    pub const fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// `[vocab, embed_dim]`.
    pub const fn embedding(&self) -> &Matrix<'a> {
        &self.embedding
    }

    /// q8 only: the `tanh` table every hidden layer applies to its int8 pre-activation codes
    /// (entry `c + 128` for code `c`), as bytes of int8 codes; `None` for the float dtypes.
    pub const fn tanh_table(&self) -> Option<&'a [u8; TANH_TABLE_LEN]> {
        self.tanh_table
    }

    /// The Linear layers in order, the output layer last.
    pub fn layers(&self) -> impl Iterator<Item = &Layer<'a>> {
        self.layers.iter().flatten()
    }

    /// Which code computes this model's layers and draws: [`Kernels::detect`] unless
    /// [`ModelView::with_kernels`] chose another; on other targets than x86_64 hosts with the
    /// `std` feature, the one their build has ([`Kernels::Simd128`] in a wasm32 build with
    /// `simd128`, [`Kernels::Portable`] otherwise).
    pub const fn kernels(&self) -> Kernels {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return self.kernels;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Kernels::Simd128;
        #[cfg(not(any(
            all(feature = "std", target_arch = "x86_64"),
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        Kernels::Portable
    }

    /// This view with its layers and draws computed by `kernels` if this CPU runs them, and by
    /// [`Kernels::Portable`] if it does not ([`Kernels::runs_here`]; asking for [`Kernels::Avx2`]
    /// on a CPU, target or build without it is never unsafe; [`ModelView::kernels`] tells which
    /// was taken). Every choice gives the same bits: this is for the tests and benchmarks that
    /// compare them. Only x86_64 hosts choose; a wasm32 build keeps the kernels it was compiled
    /// with.
    #[must_use]
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return Self {
            kernels: if kernels.runs_here() {
                kernels
            } else {
                Kernels::Portable
            },
            ..self
        };
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        {
            let _ = kernels;
            self
        }
    }

    /// Host only: copies the layers' weights, once, into the order in which the x86_64 AVX2 kernel
    /// reads them (8 rows at a time, chunk by chunk, from a 64-byte boundary), so that one name at
    /// a time runs faster: on the AVX2 benchmark machine an f32 forward pass took 2.6 us instead of
    /// 3.4 (fastest of many). Every result stays the same bits. The copy is as large as the weights
    /// (about 180 KB for the default model in f32); the view still borrows everything else. It is
    /// made whenever this CPU runs [`Kernels::Avx2`] and read while the view's
    /// [`ModelView::kernels`] are those, [`Kernels::Avx2Vnni`] or [`Kernels::Avx512Vnni`],
    /// whichever was chosen first (a q8 layer's copy also holds its per-row integers). On
    /// other targets, or a CPU without AVX2 and F16C, this does nothing.
    #[cfg(feature = "std")]
    pub fn pack_weights(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if Kernels::detect().avx2() {
            let packed = self.layers().map(crate::avx::Packed::new);
            self.packed = Some(packed.collect());
        }
    }

    /// The f32 values [`ModelView::pack_weights_into`] copies for this model: the layers'
    /// weights padded to whole blocks, in a wasm32 build with `simd128` and for the float
    /// dtypes; 0 everywhere else (the kernels read the weights in place).
    pub fn packed_len(&self) -> usize {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if self.tanh_table.is_none() {
            return self
                .layers()
                .map(|layer| crate::simd128::pack::len(&layer.weight))
                .sum();
        }
        0
    }

    /// A [`ModelView::packed_len`] that holds for every model whose layers are at most
    /// `width` wide (every model a [`crate::Forward`] of that width takes): the size of a
    /// buffer that [`ModelView::pack_weights_into`] never finds too short for them.
    pub const fn packed_capacity(width: usize) -> usize {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            use crate::simd128::pack::ROWS;
            use crate::tensor::LANES;
            let padded = width.div_ceil(ROWS) * ROWS * width.div_ceil(LANES) * LANES;
            (MAX_HIDDEN_LAYERS + 1) * padded
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            let _ = width;
            0
        }
    }

    /// For builds without an allocator whose kernels read a packed copy of the weights (a
    /// wasm32 build with `simd128`): copies the layers' weights once into the start of
    /// `buffer`, in the order the SIMD128 kernel reads them (4 rows at a time, chunk by chunk,
    /// each value decoded to f32), and computes the layers from there, with the same bits. A
    /// view without the copy runs a compact scalar loop there instead, much slower: that build
    /// keeps no fast kernel for the weights in place, to stay small. Fails, copying nothing,
    /// when `buffer` holds fewer than [`ModelView::packed_len`] values; copies nothing where
    /// that is 0.
    pub fn pack_weights_into(&mut self, buffer: &'a mut [f32]) -> Result<(), BufferTooSmall> {
        let needed = self.packed_len();
        if buffer.len() < needed {
            return Err(BufferTooSmall {
                needed,
                capacity: buffer.len(),
            });
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if needed > 0 {
            let matrices = self.layers().map(|layer| &layer.weight);
            self.packed = Some(crate::simd128::Packed::new(matrices, buffer));
        }
        Ok(())
    }
}

/// [`ModelView::pack_weights_into`] was given a buffer too short for the model's packed
/// weights.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// f32 values the packed weights take ([`ModelView::packed_len`]).
    pub needed: usize,
    /// f32 values the buffer holds.
    pub capacity: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the packed weights take {} values, the buffer holds {}",
            self.needed, self.capacity
        )
    }
}

impl core::error::Error for BufferTooSmall {}
