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
    let constants = Constants::new();
    for start in (0..n).step_by(LANES) {
        let first = start.min(n - LANES);
        // SAFETY: `first + LANES <= n`, and `sums`, `x` and `bias` (4 bytes per value) hold
        // `n` values (checked above); WASM loads and stores need no alignment.
        unsafe {
            let v = f32x4_add(
                v128_load(sums.as_ptr().add(first).cast()),
                v128_load(bias.add(4 * first).cast()),
            );
            let v = if activate {
                tanh_lanes(v, &constants)
            } else {
                v
            };
            v128_store(x.as_mut_ptr().add(first).cast(), v);
        }
    }
}

/// The splatted constants of [`crate::math::tanh`], made once per layer.
struct Constants {
    /// `-CLAMP` and `CLAMP`.
    clamp: [v128; 2],
    alpha: [v128; 7],
    beta: [v128; 4],
    tiny: v128,
}

impl Constants {
    /// Each value comes through a volatile read, which the compiler cannot see through, so it
    /// keeps the splats in locals for the whole loop. Constants it would instead write into the
    /// loop, where V8 builds each from immediates on every pass (three instructions per
    /// constant per 4 values: more than the arithmetic).
    #[inline(always)]
    fn new() -> Self {
        use crate::math::{ALPHA, BETA, CLAMP, TINY};
        // SAFETY: a reference is valid for a read.
        let splat = |value: &f32| f32x4_splat(unsafe { core::ptr::read_volatile(value) });
        Self {
            clamp: [splat(&-CLAMP), splat(&CLAMP)],
            alpha: [
                splat(&ALPHA[0]),
                splat(&ALPHA[1]),
                splat(&ALPHA[2]),
                splat(&ALPHA[3]),
                splat(&ALPHA[4]),
                splat(&ALPHA[5]),
                splat(&ALPHA[6]),
            ],
            beta: [
                splat(&BETA[0]),
                splat(&BETA[1]),
                splat(&BETA[2]),
                splat(&BETA[3]),
            ],
            tiny: splat(&TINY),
        }
    }
}

/// [`crate::math::tanh`] of each lane, its operations in its order.
#[inline(always)]
fn tanh_lanes(x: v128, c: &Constants) -> v128 {
    // `x.clamp(-CLAMP, CLAMP)`: `pmax(x, m)` is `x < m ? m : x`, `pmin(x, m)` is `m < x ? m : x`.
    let clamped = f32x4_pmin(f32x4_pmax(x, c.clamp[0]), c.clamp[1]);
    let x2 = f32x4_mul(clamped, clamped);
    // Horner's rule written out: the size-first build keeps loops, and a loop here would load
    // each coefficient on every step.
    let step = |acc: v128, coefficient: v128| f32x4_add(f32x4_mul(acc, x2), coefficient);
    let [a0, a1, a2, a3, a4, a5, a6] = c.alpha;
    let p = step(step(step(step(step(step(a0, a1), a2), a3), a4), a5), a6);
    let p = f32x4_mul(p, clamped);
    let [b0, b1, b2, b3] = c.beta;
    let q = step(step(step(b0, b1), b2), b3);
    let ratio = f32x4_div(p, q);
    let tiny = f32x4_lt(f32x4_abs(x), c.tiny);
    v128_bitselect(x, ratio, tiny)
}
