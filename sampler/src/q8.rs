//! The q8 dtype's integer network (`model/FORMAT.md`, "The q8 dtype"): the portable reference
//! kernel, the rows' requantisation around every kernel, and the loader's overflow bound.
//!
//! Every layer accumulates int8 weights times int8 inputs into int32 from the row's bias,
//! requantises the sum per row ([`namegen_model::q8::requantize`]) and, for a hidden layer,
//! looks the clamped int8 code up in the shared `tanh` table; the output layer's Q16 logits
//! are handed out as they are, for the integer draw. All of it is integer arithmetic, so every target computes the same
//! logits; the loader's bound ([`check`]) guarantees that no int32 overflows for any input.

use namegen_model::TensorName;
use namegen_model::q8::{
    MAX_INPUT, MAX_LOGIT, TANH_TABLE_LEN, requantize, split_bias_shift, widen_multiplier,
};

use crate::error::LoadError;
use crate::view::{Layer, ModelView};

// The dot products and the layout of the codes they read, each kernel called by `groups`:
// SMLAD on pairs of codes, two rows at a time, on Cortex-M cores with the DSP extension (the
// `dsp` feature), four rows at a time in assembly on the Cortex-M3 and M33 (the `armv7m`
// feature), plain integer Rust one row at a time everywhere else. All compute the same exact
// integers.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod dsp;
#[cfg(all(feature = "dsp", target_arch = "arm"))]
pub(crate) use dsp::{Code, store};
#[cfg(not(all(target_arch = "arm", any(feature = "dsp", feature = "armv7m"))))]
pub(crate) use portable::dot;
#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
pub(crate) use portable::{Code, store};
#[cfg(all(feature = "armv7m", target_arch = "arm", not(feature = "dsp")))]
mod armv7m;

/// The Q16 logits after `context` (`block_size` symbol indices, oldest first) into `logits`, with
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
    logits: &mut [i32],
) -> usize {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if model.kernels().avx2() {
        // SAFETY: `avx::q8::logits` requires only that the CPU supports AVX2; a view's
        // kernels are `Kernels::Avx2` or `Avx2Vnni` only when `Kernels::detect` found it.
        return unsafe { crate::avx::q8::logits(model, table, context, x, y, logits) };
    }
    embed(model, context, x);
    let mut width = model.config().input_width();
    let last = model.config().n_layers() - 1;
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        if index == last {
            outputs(layer, x, |row, z| logits[row] = z);
        } else {
            outputs(layer, x, |row, z| {
                // `z + 128` is in 0..=255, within the 256 entries.
                store(y, row, table[(z.clamp(-128, 127) + 128) as usize] as i8);
            });
            core::mem::swap(&mut x, &mut y);
        }
        width = rows;
    }
    width
}

/// The first layer's input: the embedding codes of the `context` symbols, slot after slot,
/// into `x` as [`store`] lays them out. Panics (slice bounds) on a buffer too short or a
/// symbol out of range.
#[inline(always)]
pub(crate) fn embed(model: &ModelView<'_>, context: &[u8], x: &mut [Code]) {
    let embedding = model.embedding();
    let cols = embedding.cols();
    for (slot, &symbol) in context.iter().enumerate() {
        let codes = embedding.row_bytes(usize::from(symbol));
        for (column, &byte) in codes.iter().enumerate() {
            store(x, slot * cols + column, byte as i8);
        }
    }
}

/// Calls `set(row, z)` with the output `z` of every row of `layer` on the codes `input`
/// ([`groups`]), in order, by this target's kernel (x86_64 hosts with AVX2 take
/// [`crate::avx::q8::logits`] for the whole pass instead).
#[inline(always)]
fn outputs(layer: &Layer<'_>, input: &[Code], set: impl FnMut(usize, i32)) {
    // The assembly kernels through closures: one per caller of this function, so each is
    // called once and inlined even by a size-first build, which calls a function item's one
    // shared copy out of line, its arguments and results through the stack.
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    #[expect(clippy::redundant_closure, reason = "the closure is what gets inlined")]
    return groups(
        layer,
        input,
        |w, cols, x, bias| dsp::dots(w, cols, x, bias),
        set,
    );
    #[cfg(all(feature = "armv7m", target_arch = "arm", not(feature = "dsp")))]
    #[expect(clippy::redundant_closure, reason = "the closure is what gets inlined")]
    return groups(
        layer,
        input,
        |w, cols, x, bias| armv7m::dots(w, cols, x, bias),
        set,
    );
    #[cfg(not(all(target_arch = "arm", any(feature = "dsp", feature = "armv7m"))))]
    groups(layer, input, |row, _, x, [bias]| [dot(row, x, bias)], set);
}

/// Calls `set(row, z)` with the output `z` of every row of `layer` on the codes `input` (as
/// [`store`] laid them out), once each, in order. `dots(block, cols, input, bias)` gives, for
/// each of the one to `R` rows of `cols` weights in `block`, `bias[k]` plus the row's
/// products: `R` rows at a time, for kernels that share each input load between rows. Each
/// sum is requantised.
#[inline(always)]
fn groups<const R: usize>(
    layer: &Layer<'_>,
    input: &[Code],
    dots: impl Fn(&[u8], usize, &[Code], [i32; R]) -> [i32; R],
    mut set: impl FnMut(usize, i32),
) {
    // The per-row integers straight from the file's bytes rather than through the view's
    // accessors, which a size-first build calls out of line for every row; a plain index
    // loop, which it compiles without iterator calls.
    let cols = layer.weight.cols();
    let weights = layer.weight.bytes();
    let [bias_shift, multiplier] = layer.requant.bytes();
    let rows = multiplier.len() / 2;
    // The view's shapes, checked once here rather than at every row: the kernels' register
    // pressure spills whatever a row's bounds checks keep alive.
    assert!(
        rows.checked_mul(cols).is_some_and(|n| n <= weights.len()) && bias_shift.len() / 4 >= rows,
        "q8 layer shorter than its rows"
    );
    let mut first = 0;
    while first < rows {
        let n = R.min(rows - first);
        let mut acc = [0; R];
        // Over all `R` rather than `..n`: a loop the compiler unrolls, where a copy of `n`
        // words it calls memcpy for.
        for (k, acc) in acc.iter_mut().enumerate() {
            if k < n {
                // SAFETY: `first + k < rows`, and `bias_shift` holds `rows` words (asserted
                // above).
                *acc = split_bias_shift(unsafe { word(bias_shift, first + k) }).0;
            }
        }
        // SAFETY: rows `first..first + n` are within the `rows * cols` weights asserted above.
        let block = unsafe { weights.get_unchecked(first * cols..(first + n) * cols) };
        let acc = dots(block, cols, input, acc);
        for (k, &acc) in acc[..n].iter().enumerate() {
            let row = first + k;
            // SAFETY: `row < rows`, and `bias_shift` and `multiplier` hold `rows` each
            // (asserted above, and `rows` is the number of multipliers).
            let (word, multiplier) = unsafe { (word(bias_shift, row), half(multiplier, row)) };
            let shift = split_bias_shift(word).1;
            set(row, requantize(acc, widen_multiplier(multiplier), shift));
        }
        first += n;
    }
}

/// Little-endian int32 number `index` of `bytes` (a `bias_shift` word), read in place.
///
/// # Safety
///
/// `bytes` must hold at least `4 * (index + 1)` bytes.
#[inline(always)]
unsafe fn word(bytes: &[u8], index: usize) -> i32 {
    // SAFETY: the four bytes are within `bytes` (the caller's promise); `[u8; 4]` has
    // alignment 1.
    i32::from_le_bytes(unsafe { *bytes.as_ptr().add(4 * index).cast::<[u8; 4]>() })
}

/// Little-endian int16 number `index` of `bytes` (a multiplier), read in place.
///
/// # Safety
///
/// `bytes` must hold at least `2 * (index + 1)` bytes.
#[inline(always)]
unsafe fn half(bytes: &[u8], index: usize) -> i16 {
    // SAFETY: the two bytes are within `bytes` (the caller's promise); `[u8; 2]` has
    // alignment 1.
    i16::from_le_bytes(unsafe { *bytes.as_ptr().add(2 * index).cast::<[u8; 2]>() })
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
    #[cfg(not(all(target_arch = "arm", any(feature = "dsp", feature = "armv7m"))))]
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
/// requantised `B` must stay within [`MAX_LOGIT`] (so that the logit converts to f32 exactly, and
/// two logits differ by at most `2^25`, which the integer draw's bound needs):
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
            let shift = requant.shift(row);
            // The weights and the 24-bit bias alone stay below 2^27 (at most 4,096 inputs of
            // 127 * 128): only a left shift can take the bound past int32.
            if bound << shift.max(0) > i32::MAX as u64 {
                return overflow(TensorName::BiasShift(index));
            }
            // Within int32: at most the shifted bound.
            let acc = bound as i32;
            let logit = requantize(acc, requant.multiplier(row), shift);
            if index == last && u64::from(logit.unsigned_abs()) > MAX_LOGIT {
                return overflow(TensorName::Multiplier(index));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use namegen_model::Rng;
    use namegen_model::q8::requantize;

    use super::{Code, dot, groups};
    use crate::{Layer, ModelView};

    /// The sums of the one to `R` rows of `cols` weights in `block` by the portable dot
    /// product, one row after the other; 0 for the rows the block lacks.
    fn each<const R: usize>(block: &[u8], cols: usize, x: &[Code], bias: [i32; R]) -> [i32; R] {
        let mut sums = [0; R];
        for ((sum, row), bias) in sums.iter_mut().zip(block.chunks(cols)).zip(bias) {
            *sum = dot(row, x, bias);
        }
        sums
    }

    /// The outputs [`groups`] of `R` rows hands to `set`, each call checked to continue where
    /// the last one ended.
    fn outputs<const R: usize>(layer: &Layer<'_>, input: &[Code]) -> Vec<i32> {
        let mut got = vec![];
        groups(layer, input, each::<R>, |row, z| {
            assert_eq!(row, got.len());
            got.push(z);
        });
        got
    }

    /// Every layer's outputs through `groups` of 1, 2, 3 and 4 rows (the Cortex-M4's kernel,
    /// `dsp.rs`, takes 2, the Cortex-M3's, `armv7m.rs`, 4) equal the format's sum of products,
    /// requantised, computed here row by row from the view's accessors, each row handed to
    /// `set` once and in order. The groups run the portable dot product here; the assembly
    /// runs only on the device, where the firmware tests compare its names with the host's.
    #[test]
    fn groups_of_rows_give_every_row_once() {
        let bytes = include_bytes!("../tests/data/model-q8.safetensors");
        let model = ModelView::parse(bytes).unwrap();
        let mut rng = Rng::new(3);
        for layer in model.layers() {
            let (rows, cols) = (layer.weight.rows(), layer.weight.cols());
            let input: Vec<Code> = (0..cols).map(|_| rng.next_u32() as Code).collect();
            let want: Vec<i32> = (0..rows)
                .map(|row| {
                    let products = layer.weight.row_bytes(row).iter().zip(&input);
                    let sum: i64 = products
                        .map(|(&w, &x)| i64::from(w as i8) * i64::from(x))
                        .sum();
                    let acc = i32::try_from(sum + i64::from(layer.requant.bias(row))).unwrap();
                    requantize(acc, layer.requant.multiplier(row), layer.requant.shift(row))
                })
                .collect();
            assert_eq!(outputs::<1>(layer, &input), want);
            assert_eq!(outputs::<2>(layer, &input), want);
            assert_eq!(outputs::<3>(layer, &input), want);
            assert_eq!(outputs::<4>(layer, &input), want);
        }
    }
}
