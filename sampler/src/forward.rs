//! The forward pass of a folded model with fixed buffers: embed the context, then for each
//! Linear layer `y = W x + b` and `tanh` on every layer but the last. A q8 model runs the same
//! network in integers (`crate::q8`).
//!
//! Every float operation happens in the same order on every target (see
//! [`crate::tensor::dot_f32`] for the dot product, and [`crate::math::tanh`], plain IEEE
//! arithmetic), so x86_64, WASM and Cortex-M compute the same logits bit for bit.

use core::fmt;

#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
use crate::view::Layer;
use crate::view::ModelView;

/// The widest layer the default buffers hold: makemore part 3's 100 hidden units (its input,
/// 3 x 10, and output, 27, are narrower).
pub const DEFAULT_WIDTH: usize = 100;

/// A model does not fit a [`Forward`]'s buffers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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

/// One step's logits as a model's dtype gives them: f32 for a float model, Q16 integers for a
/// q8 one (`model/FORMAT.md`, "The q8 dtype"), which its draw reads as they are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Logits<'a> {
    /// A float model's.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    Float(&'a [f32]),
    /// A q8 model's, in units of `2^-16`.
    #[cfg(feature = "q8")]
    Q16(&'a [i32]),
}

/// Two activation buffers of `W` f32 each for a float model, and with the `q8` feature two of
/// `W` int8 codes for the integer network (widened to 16 bits with the `dsp` feature on ARM)
/// and `W` int32 for its Q16 logits: all the RAM a forward pass uses. A build with the `q8`
/// kernel alone keeps no f32 buffer.
#[derive(Clone, Debug)]
pub struct Forward<const W: usize = DEFAULT_WIDTH> {
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    x: [f32; W],
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    y: [f32; W],
    #[cfg(feature = "q8")]
    codes: [Codes<W>; 2],
    #[cfg(feature = "q8")]
    q16: [i32; W],
}

/// A q8 activation buffer, word-aligned: the DSP kernel loads its codes a word at a time.
#[cfg(feature = "q8")]
#[derive(Clone, Debug)]
#[repr(C, align(4))]
struct Codes<const W: usize>([crate::q8::Code; W]);

impl<const W: usize> Default for Forward<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Forward<W> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Self {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            x: [0.0; W],
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            y: [0.0; W],
            #[cfg(feature = "q8")]
            codes: [Codes([0; W]), Codes([0; W])],
            #[cfg(feature = "q8")]
            q16: [0; W],
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

    /// The `vocab_size` logits after `context` (`block_size` symbol indices, oldest first), in
    /// f32: a q8 model's Q16 logits converted exactly (`|logit| <= 2^24` units). Needs a float
    /// kernel's feature: a build with the `q8` kernel alone reads its logits as integers.
    ///
    /// The model must have passed [`Forward::check`] and the context must hold valid
    /// indices; [`crate::Sampler`] and [`crate::score()`] guarantee both. Otherwise this
    /// panics (slice bounds), it never reads outside the buffers.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    pub fn logits(&mut self, model: &ModelView<'_>, context: &[u8]) -> &[f32] {
        #[cfg(feature = "q8")]
        if let Some(table) = model.tanh_table() {
            let width = self.q8_logits(model, table, context);
            return q16_to_f32(&self.q16[..width], &mut self.x);
        }
        let width = self.float_logits(model, context);
        &self.x[..width]
    }

    /// The `vocab_size` logits after `context` as the model's dtype gives them; the
    /// requirements of [`Forward::logits`].
    pub(crate) fn run(&mut self, model: &ModelView<'_>, context: &[u8]) -> Logits<'_> {
        #[cfg(feature = "q8")]
        if let Some(table) = model.tanh_table() {
            let width = self.q8_logits(model, table, context);
            return Logits::Q16(&self.q16[..width]);
        }
        #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
        {
            let width = self.float_logits(model, context);
            Logits::Float(&self.x[..width])
        }
        // A build with the q8 kernel alone views q8 models only, so this is never reached;
        // leaving the float network out keeps its code (soft-float on most small parts) out
        // of flash.
        #[cfg(not(any(feature = "f32", feature = "f16", feature = "i8")))]
        Logits::Q16(&[])
    }

    /// Runs a q8 model (`table` is its [`ModelView::tanh_table`]) on `context`, its Q16 logits
    /// into `q16`; returns how many.
    #[cfg(feature = "q8")]
    fn q8_logits(
        &mut self,
        model: &ModelView<'_>,
        table: &[u8; namegen_model::q8::TANH_TABLE_LEN],
        context: &[u8],
    ) -> usize {
        let [Codes(x), Codes(y)] = &mut self.codes;
        crate::q8::logits(model, table, context, x, y, &mut self.q16)
    }

    /// Runs a float model on `context`, its logits into `x`; returns how many.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    fn float_logits(&mut self, model: &ModelView<'_>, context: &[u8]) -> usize {
        let config = model.config();
        let dim = config.embed_dim();
        let embedding = model.embedding();
        for (slot, &symbol) in self.x.chunks_exact_mut(dim).zip(context) {
            embedding.row_into(usize::from(symbol), slot);
        }
        layers(model, &mut self.x, &mut self.y)
    }
}

/// The Q16 logits `q` as f32 into the start of `z` (at least as long), exactly (`|q| <= 2^24`
/// for every logit the loader admits); returns that part of `z`.
#[cfg(all(feature = "q8", any(feature = "f32", feature = "f16", feature = "i8")))]
pub(crate) fn q16_to_f32<'z>(q: &[i32], z: &'z mut [f32]) -> &'z [f32] {
    let z = &mut z[..q.len()];
    for (z, &q) in z.iter_mut().zip(q) {
        *z = namegen_model::q8::logit_to_f32(q);
    }
    z
}

/// Runs every layer on the embedded context in `x`; returns how many logits `x` then holds.
///
/// Each layer multiplies `x` into `y`, then writes its activations back into `x`. Writing to
/// the other buffer, rather than in place, keeps `tanh` a plain vector loop: in place, LLVM
/// stores the inputs that `tanh` leaves as they are (`|x| < 0.0004`) with a masked store,
/// which on AMD's cores costs more than the whole activation.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
pub(crate) fn layers<const W: usize>(
    model: &ModelView<'_>,
    x: &mut [f32; W],
    y: &mut [f32; W],
) -> usize {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let avx2 = model.kernels().avx2();
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let packed = model.packed.as_deref();
    let mut width = model.config().input_width();
    let last = model.config().n_layers() - 1;
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        let (input, out) = (&mut x[..], &mut y[..rows]);
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if avx2 {
            let packed = packed.and_then(|packed| packed.get(index));
            // SAFETY: `apply_avx2` requires only that the CPU supports AVX2 and F16C; a view's
            // kernels are `Kernels::Avx2` or `Avx2Vnni` only when `Kernels::detect` found both.
            unsafe { apply_avx2(layer, packed, input, width, out, index != last) };
        } else {
            apply(layer, input, width, out, index != last);
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            let packed = model.packed.map(|packed| packed.layer(index));
            crate::simd128::apply(layer, packed, input, width, out, index != last);
        }
        #[cfg(not(any(
            all(feature = "std", target_arch = "x86_64"),
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        apply(layer, input, width, out, index != last);
        width = rows;
    }
    width
}

/// [`apply`] with the kernels of [`crate::Kernels::Avx2`]: the same bits (see [`crate::avx`]; the tests
/// compare it with a scalar forward pass), faster than the portable code compiled for AVX2,
/// which cannot keep 8 rows' sums in registers nor widen f16 in one instruction.
#[cfg(all(
    feature = "std",
    target_arch = "x86_64",
    any(feature = "f32", feature = "f16", feature = "i8")
))]
#[target_feature(enable = "avx2,f16c")]
pub(crate) fn apply_avx2(
    layer: &Layer<'_>,
    packed: Option<&crate::avx::Packed>,
    x: &mut [f32],
    width: usize,
    out: &mut [f32],
    activate: bool,
) {
    match packed {
        Some(packed) => crate::avx::matvec_packed(&layer.weight, packed, &x[..width], out),
        None => crate::avx::matvec(&layer.weight, &x[..width], out),
    }
    if out.len() < crate::tensor::LANES {
        finish(layer, out, x, activate);
    } else {
        crate::avx::finish(out, &layer.bias, &mut x[..out.len()], activate);
    }
}

/// One layer on the `width` inputs in `x`: `out = W x + b`, then `tanh` if `activate`, written
/// back into `x`; `out` is scratch space as long as the layer's output. A wasm32 build with
/// `simd128` computes the same bits with its kernels instead ([`crate::simd128::apply`]).
#[cfg(all(
    any(feature = "f32", feature = "f16", feature = "i8"),
    not(all(target_arch = "wasm32", target_feature = "simd128"))
))]
#[inline(always)]
pub(crate) fn apply(
    layer: &Layer<'_>,
    x: &mut [f32],
    width: usize,
    out: &mut [f32],
    activate: bool,
) {
    layer.weight.matvec(&x[..width], out);
    finish(layer, out, x, activate);
}

/// `x = sums + b`, then `tanh` if `activate`, for the products `sums = W x`.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
#[inline(always)]
pub(crate) fn finish(layer: &Layer<'_>, sums: &[f32], x: &mut [f32], activate: bool) {
    let values = sums
        .iter()
        .zip(layer.bias.iter())
        .map(|(sum, bias)| sum + bias);
    if activate {
        x.iter_mut()
            .zip(values)
            .for_each(|(x, v)| *x = crate::math::tanh(v));
    } else {
        x.iter_mut().zip(values).for_each(|(x, v)| *x = v);
    }
}
