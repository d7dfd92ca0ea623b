//! The q8 dtype's integer network (`model/FORMAT.md`, "The q8 dtype"): the portable reference
//! kernel, and the loader's overflow bound.
//!
//! Every layer accumulates int8 weights times int8 inputs into int32 from the row's bias,
//! requantises the sum per row ([`namegen_model::q8::requantize`]) and, for a hidden layer,
//! looks the clamped int8 code up in the shared `tanh` table; the output layer's Q16 logits
//! become f32 exactly. All of it is integer arithmetic, so every target computes the same
//! logits; the loader's bound ([`check`]) guarantees that no int32 overflows for any input.

use namegen_model::TensorName;
use namegen_model::q8::{MAX_INPUT, MAX_LOGIT, TANH_TABLE_LEN, logit_to_f32, requantize};

use crate::error::LoadError;
use crate::view::{Layer, ModelView};

// The dot product and the layout of the codes it reads: SMLAD on pairs of codes on Cortex-M
// cores with the DSP extension (the `dsp` feature), plain integer Rust everywhere else. Both
// compute the same exact integers.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod dsp;
#[cfg(all(feature = "dsp", target_arch = "arm"))]
pub(crate) use dsp::{Code, store};
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
pub(crate) use portable::{Code, dot, store};

/// The logits after `context` (`block_size` symbol indices, oldest first) into `logits`, with
/// `x` and `y` as the int8 activations, laid out as [`store`] puts them (each at least
/// [`namegen_model::ModelConfig::max_width`] long, like `logits`); returns how many logits
/// were written. `table` is the model's ([`ModelView::tanh_table`]). Panics (slice bounds) on
/// buffers too short or symbols out of range, never reads outside them.
pub(crate) fn logits<'b>(
    model: &ModelView<'_>,
    table: &[u8; TANH_TABLE_LEN],
    context: &[u8],
    mut x: &'b mut [Code],
    mut y: &'b mut [Code],
    logits: &mut [f32],
) -> usize {
    let embedding = model.embedding();
    let cols = embedding.cols();
    for (slot, &symbol) in context.iter().enumerate() {
        let codes = embedding.row_bytes(usize::from(symbol));
        for (column, &byte) in codes.iter().enumerate() {
            store(x, slot * cols + column, byte as i8);
        }
    }
    let mut width = model.config().input_width();
    let last = model.config().n_layers() - 1;
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        if index == last {
            outputs(model, index, layer, x, width, |first, z| {
                for (logit, &z) in logits[first..].iter_mut().zip(z) {
                    *logit = logit_to_f32(z);
                }
            });
        } else {
            outputs(model, index, layer, x, width, |first, z| {
                for (row, &z) in (first..).zip(z) {
                    // `z + 128` is in 0..=255, within the 256 entries.
                    store(y, row, table[(z.clamp(-128, 127) + 128) as usize] as i8);
                }
            });
            core::mem::swap(&mut x, &mut y);
        }
        width = rows;
    }
    width
}

/// Calls `set(first, z)` with the outputs `z` of rows `first..first + z.len()` of `layer`
/// (the model's layer `index`) on the first `width` codes of `input` ([`output`]), for every
/// row, computed by the model's [`ModelView::kernels`]: the same integers either way.
#[inline(always)]
fn outputs(
    model: &ModelView<'_>,
    index: usize,
    layer: &Layer<'_>,
    input: &[Code],
    width: usize,
    set: impl FnMut(usize, &[i32]),
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if model.kernels().avx2() {
        let packed = model.packed.as_deref().and_then(|packed| packed.get(index));
        if let Some(packed) = packed
            && model.kernels() == crate::Kernels::Avx2Vnni
        {
            // SAFETY: `avx::q8::outputs_vnni` requires only that the CPU supports AVX2 and
            // AVX-VNNI; a view's kernels are `Kernels::Avx2Vnni` only when `Kernels::detect`
            // found both.
            return unsafe { crate::avx::q8::outputs_vnni(layer, packed, &input[..width], set) };
        }
        // SAFETY: `avx::q8::outputs` requires only that the CPU supports AVX2; a view's
        // kernels are `Kernels::Avx2` or `Avx2Vnni` only when `Kernels::detect` found it.
        return unsafe { crate::avx::q8::outputs(layer, packed, &input[..width], set) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = (model, index, width);
    // The DSP kernel takes two rows at a time.
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    return dsp::outputs(layer, input, set);
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        let mut set = set;
        for row in 0..layer.weight.rows() {
            set(row, &[output(layer, row, input)]);
        }
    }
}

/// Row `row` of `layer` on the codes `input` (as [`store`] laid them out): the bias plus the
/// products, requantised. The sums wrap rather than panic on a layout the loader never
/// checked; for a checked model they never leave int32.
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
#[inline(always)]
fn output(layer: &Layer<'_>, row: usize, input: &[Code]) -> i32 {
    let requant = &layer.requant;
    let acc = dot(layer.weight.row_bytes(row), input, requant.bias(row));
    requantize(acc, requant.multiplier(row), requant.shift(row))
}

/// The dot product in plain integer Rust, one code per element.
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
mod portable {
    /// One element of a layer's input: an int8 code as it is.
    pub(crate) type Code = i8;

    /// Puts `code`, input `index` of a layer, into `x`. Panics past the end, like slice
    /// indexing.
    #[inline(always)]
    pub(crate) fn store(x: &mut [Code], index: usize, code: i8) {
        x[index] = code;
    }

    /// `bias + sum_j weights[j] * x[j]` over the row's int8 `weights` (as bytes) and the first
    /// `weights.len()` codes of `x`. The sum wraps rather than panics on a layout the loader
    /// never checked; for a checked model it never leaves int32, and any order of the
    /// additions gives the same integer. Panics if `x` is shorter than `weights`.
    #[inline(always)]
    pub(crate) fn dot(weights: &[u8], x: &[Code], bias: i32) -> i32 {
        let x = &x[..weights.len()];
        let product = |w: u8, x: i8| i32::from(w as i8) * i32::from(x);
        // Four products per step: fewer loop branches where the compiler does not unroll
        // (the size-first profile of the smallest parts).
        let ((weights4, weights_tail), (x4, x_tail)) =
            (weights.as_chunks::<4>(), x.as_chunks::<4>());
        let mut acc = bias;
        for (w, x) in weights4.iter().zip(x4) {
            let pairs = product(w[0], x[0]) + product(w[1], x[1]);
            acc = acc
                .wrapping_add(pairs)
                .wrapping_add(product(w[2], x[2]) + product(w[3], x[3]));
        }
        for (&w, &x) in weights_tail.iter().zip(x_tail) {
            acc = acc.wrapping_add(product(w, x));
        }
        acc
    }
}

/// Refuses a q8 model some int8 input could overflow: for each layer and row,
/// `B = sum_j |weight[r, j]| * 128 + |bias[r]|` bounds every partial sum of the accumulator,
/// whatever the inputs, so `B * 2^max(shift, 0)` must fit int32, and for the output layer the
/// requantised `B` must stay within [`MAX_LOGIT`] so that the logit converts to f32 exactly:
/// the requantisation is monotone and `|requantize(a)| <= requantize(|a|)` (ties of its high
/// multiplication go toward +infinity, so never away from zero for a negative `a`). The view's shapes and the shifts'
/// range have been checked, so nothing here panics.
pub(crate) fn check(view: &ModelView<'_>) -> Result<(), LoadError> {
    let last = view.config().n_layers() - 1;
    for (index, layer) in view.layers().enumerate() {
        let requant = &layer.requant;
        for row in 0..layer.weight.rows() {
            let weights: u64 = layer
                .weight
                .row_bytes(row)
                .iter()
                .map(|&w| u64::from((w as i8).unsigned_abs()))
                .sum();
            let bias = u64::from(requant.bias(row).unsigned_abs());
            let bound = weights * MAX_INPUT + bias;
            let overflow = |tensor| Err(LoadError::IntegerOverflow { tensor, row });
            let Ok(acc) = i32::try_from(bound) else {
                let alone = i32::try_from(bias).is_err();
                return overflow(if alone {
                    TensorName::Bias(index)
                } else {
                    TensorName::Weight(index)
                });
            };
            let shift = requant.shift(row);
            if bound << shift.max(0) > i32::MAX as u64 {
                return overflow(TensorName::Shift(index));
            }
            let logit = requantize(acc, requant.multiplier(row), shift);
            if index == last && u64::from(logit.unsigned_abs()) > MAX_LOGIT {
                return overflow(TensorName::Multiplier(index));
            }
        }
    }
    Ok(())
}
