//! The one-name forward pass's bias and `tanh`, 4 lanes at a time: [`finish`], bit for bit
//! the portable loop.
//!
//! Why it is the same: [`tanh_lanes`] runs [`crate::math::tanh`]'s sequence of operations on
//! 4 lanes, its `if` a select, and its clamp WASM's pseudo-maximum and pseudo-minimum, which
//! are the comparisons `clamp` makes (`x < min`, then `max < x`; NaN is kept). Each output
//! is a pure function of its own sum and bias, so [`finish`] may compute some twice.

use core::arch::wasm32::{
    f32x4_abs, f32x4_add, f32x4_div, f32x4_lt, f32x4_mul, f32x4_pmax, f32x4_pmin, f32x4_splat,
    v128, v128_bitselect, v128_load, v128_store,
};

use crate::view::Layer;

/// Lanes of a WASM SIMD register of f32.
const LANES: usize = 4;

/// `x = sums + bias`, then [`crate::math::tanh`] if `activate`: the same bits as the portable
/// loop, for `x` at least as long as `sums`. The last chunk overlaps the one before it
/// rather than going one value at a time; fewer than 4 values go through the portable loop.
pub(super) fn finish(layer: &Layer<'_>, sums: &[f32], x: &mut [f32], activate: bool) {
    let n = sums.len();
    if n < LANES {
        return crate::forward::finish(layer, sums, x, activate);
    }
    let x = &mut x[..n];
    assert_eq!(layer.bias.len(), n, "one bias per sum");
    let bias = layer.bias.bytes().as_ptr();
    for start in (0..n).step_by(LANES) {
        let first = start.min(n - LANES);
        // SAFETY: `first + LANES <= n`, and `sums`, `x` and `bias` (4 bytes per value) hold
        // `n` values (checked above); WASM loads and stores need no alignment.
        unsafe {
            let v = f32x4_add(
                v128_load(sums.as_ptr().add(first).cast()),
                v128_load(bias.add(4 * first).cast()),
            );
            let v = if activate { tanh_lanes(v) } else { v };
            v128_store(x.as_mut_ptr().add(first).cast(), v);
        }
    }
}

/// [`crate::math::tanh`] of each lane, its operations in its order.
#[inline(always)]
fn tanh_lanes(x: v128) -> v128 {
    use crate::math::{ALPHA, BETA, CLAMP, TINY};
    // `x.clamp(-CLAMP, CLAMP)`: `pmax(x, m)` is `x < m ? m : x`, `pmin(x, m)` is `m < x ? m : x`.
    let clamped = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-CLAMP)), f32x4_splat(CLAMP));
    let x2 = f32x4_mul(clamped, clamped);
    // Horner's rule written out: the size-first build keeps loops, and a loop here would load
    // and splat each coefficient on every step.
    let step =
        |acc: v128, coefficient: f32| f32x4_add(f32x4_mul(acc, x2), f32x4_splat(coefficient));
    let p = step(f32x4_splat(ALPHA[0]), ALPHA[1]);
    let p = step(step(step(p, ALPHA[2]), ALPHA[3]), ALPHA[4]);
    let p = f32x4_mul(step(step(p, ALPHA[5]), ALPHA[6]), clamped);
    let q = step(step(step(f32x4_splat(BETA[0]), BETA[1]), BETA[2]), BETA[3]);
    let ratio = f32x4_div(p, q);
    let tiny = f32x4_lt(f32x4_abs(x), f32x4_splat(TINY));
    v128_bitselect(x, ratio, tiny)
}
