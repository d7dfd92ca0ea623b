//! The one-name forward pass's bias and `tanh`, 8 lanes at a time: [`finish`], bit for bit
//! the portable loop, and [`tanh_lanes`], which the batched generator's
//! [`super::group::finish_group`] shares.
//!
//! Why it is the same: [`tanh_lanes`] runs [`crate::math::tanh`]'s sequence of operations on
//! 8 lanes, its `if` a blend (and its clamp a `max` then a `min`, which keep NaN as the
//! scalar clamp does); the tests compare it with the scalar function on every 61st f32.
//! Each output is a pure function of its own sum and bias, so [`finish`] may compute some
//! twice.

use core::arch::x86_64::{
    __m256, _CMP_LT_OQ, _mm256_add_ps, _mm256_and_ps, _mm256_blendv_ps, _mm256_castsi256_ps,
    _mm256_cmp_ps, _mm256_div_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps,
    _mm256_set1_epi32, _mm256_set1_ps, _mm256_storeu_ps,
};

use crate::tensor::{LANES, Vector};

/// `x = sums + bias`, then [`crate::math::tanh`] if `activate`: the same bits as the portable
/// loop, for `sums`, `bias` and `x` of one length, at least `LANES`. The last chunk overlaps
/// the one before it rather than going one value at a time (each value is a pure function of
/// its own sum and bias, so computing some twice changes nothing).
#[target_feature(enable = "avx2")]
pub(crate) fn finish(sums: &[f32], bias: &Vector<'_>, x: &mut [f32], activate: bool) {
    let n = sums.len();
    assert!(n >= LANES, "at least one whole chunk");
    assert!(
        bias.len() == n && x.len() == n,
        "one bias and one output per sum"
    );
    let bias = bias.bytes().as_ptr();
    for start in (0..n).step_by(LANES) {
        let first = start.min(n - LANES);
        // SAFETY: `first + LANES <= n`, and `sums`, `x` and `bias` (4 bytes per value) hold
        // `n` values (checked above); no alignment is required.
        unsafe {
            let v = _mm256_add_ps(
                _mm256_loadu_ps(sums.as_ptr().add(first)),
                _mm256_loadu_ps(bias.add(4 * first).cast()),
            );
            let v = if activate { tanh_lanes(v) } else { v };
            _mm256_storeu_ps(x.as_mut_ptr().add(first), v);
        }
    }
}

/// [`crate::math::tanh`] of each lane, its operations in its order.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn tanh_lanes(x: __m256) -> __m256 {
    use crate::math::{ALPHA, BETA, CLAMP, TINY};
    // `x.clamp(-CLAMP, CLAMP)`: `max(-CLAMP, x)` keeps x when it is NaN, as clamp does.
    let clamped = _mm256_min_ps(
        _mm256_set1_ps(CLAMP),
        _mm256_max_ps(_mm256_set1_ps(-CLAMP), x),
    );
    let x2 = _mm256_mul_ps(clamped, clamped);
    let mut p = _mm256_set1_ps(ALPHA[0]);
    for &alpha in &ALPHA[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(alpha));
    }
    p = _mm256_mul_ps(p, clamped);
    let mut q = _mm256_set1_ps(BETA[0]);
    for &beta in &BETA[1..] {
        q = _mm256_add_ps(_mm256_mul_ps(q, x2), _mm256_set1_ps(beta));
    }
    let ratio = _mm256_div_ps(p, q);
    let magnitude = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)));
    let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(magnitude, _mm256_set1_ps(TINY));
    _mm256_blendv_ps(ratio, x, tiny)
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::{LANES, tanh_lanes};
    use crate::Kernels;
    use crate::avx::tests::same_bits;

    #[test]
    fn tanh_lanes_are_the_portable_tanh_bit_for_bit() {
        if !Kernels::detect().avx2() {
            return;
        }
        // Every 61st bit pattern of both signs, as the portable function's own test.
        let inputs: Vec<u32> = (0..=u32::MAX).step_by(61).collect();
        for bits in inputs.chunks_exact(LANES) {
            let x: [f32; LANES] = core::array::from_fn(|i| f32::from_bits(bits[i]));
            let mut got = [0.0f32; LANES];
            // SAFETY: `Kernels::detect` found AVX2 and F16C above; `x` and `got` are the 32 bytes read and stored.
            unsafe {
                let lanes = tanh_lanes(core::arch::x86_64::_mm256_loadu_ps(x.as_ptr()));
                core::arch::x86_64::_mm256_storeu_ps(got.as_mut_ptr(), lanes);
            }
            for (x, got) in x.into_iter().zip(got) {
                let want = crate::math::tanh(x);
                assert!(
                    same_bits(got, want),
                    "tanh({x:e}) = {got:e}, portable {want:e}"
                );
            }
        }
    }
}
