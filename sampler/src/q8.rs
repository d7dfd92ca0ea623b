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

/// The logits after `context` (`block_size` symbol indices, oldest first) into `logits`, with
/// `x` and `y` as the int8 activations (each at least [`namegen_model::ModelConfig::max_width`]
/// long, like `logits`); returns how many logits were written. `table` is the model's
/// ([`ModelView::tanh_table`]). Panics (slice bounds) on buffers too short or symbols out of
/// range, never reads outside them.
pub(crate) fn logits<'b>(
    model: &ModelView<'_>,
    table: &[u8; TANH_TABLE_LEN],
    context: &[u8],
    mut x: &'b mut [i8],
    mut y: &'b mut [i8],
    logits: &mut [f32],
) -> usize {
    let embedding = model.embedding();
    for (slot, &symbol) in x.chunks_exact_mut(embedding.cols()).zip(context) {
        let codes = embedding.row_bytes(usize::from(symbol));
        for (code, &byte) in slot.iter_mut().zip(codes) {
            *code = byte as i8;
        }
    }
    let mut width = model.config().input_width();
    let last = model.config().n_layers() - 1;
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        let input = &x[..width];
        if index == last {
            outputs(model, index, layer, input, |first, z| {
                for (logit, &z) in logits[first..].iter_mut().zip(z) {
                    *logit = logit_to_f32(z);
                }
            });
        } else {
            outputs(model, index, layer, input, |first, z| {
                for (code, &z) in y[first..].iter_mut().zip(z) {
                    // `z + 128` is in 0..=255, within the 256 entries.
                    *code = table[(z.clamp(-128, 127) + 128) as usize] as i8;
                }
            });
            core::mem::swap(&mut x, &mut y);
        }
        width = rows;
    }
    width
}

/// Calls `set(first, z)` with the outputs `z` of rows `first..first + z.len()` of `layer`
/// (the model's layer `index`) on the int8 `input` ([`output`]), for every row, computed by
/// the model's [`ModelView::kernels`]: the same integers either way.
#[inline(always)]
fn outputs(
    model: &ModelView<'_>,
    index: usize,
    layer: &Layer<'_>,
    input: &[i8],
    mut set: impl FnMut(usize, &[i32]),
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
            return unsafe { crate::avx::q8::outputs_vnni(layer, packed, input, set) };
        }
        // SAFETY: `avx::q8::outputs` requires only that the CPU supports AVX2; a view's
        // kernels are `Kernels::Avx2` or `Avx2Vnni` only when `Kernels::detect` found it.
        return unsafe { crate::avx::q8::outputs(layer, packed, input, set) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = (model, index);
    for row in 0..layer.weight.rows() {
        set(row, &[output(layer, row, input)]);
    }
}

/// Row `row` of `layer` on the int8 `input`: the bias plus the products, requantised. The sums
/// wrap rather than panic on a layout the loader never checked; for a checked model they
/// never leave int32.
#[inline(always)]
fn output(layer: &Layer<'_>, row: usize, input: &[i8]) -> i32 {
    let requant = &layer.requant;
    let weights = layer.weight.row_bytes(row);
    let acc = weights
        .iter()
        .zip(input)
        .fold(requant.bias(row), |acc, (&w, &x)| {
            acc.wrapping_add(i32::from(w as i8) * i32::from(x))
        });
    requantize(acc, requant.multiplier(row), requant.shift(row))
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
