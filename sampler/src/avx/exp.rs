//! The draw's weights `expf((z - m) / T)`: [`exp_weights`], bit for bit `libm::expf`.
//!
//! Why it is the same: it runs `libm::expf` (FreeBSD's `e_expf.c`) on 8 lanes at once: the
//! same argument reduction and polynomial, operation for operation, with its branches on the
//! argument's range turned into selects. Its last step, `scalbnf(y, k)`, multiplies by `2^k`,
//! which is exact while the result stays normal; the vector code adds `k` to the exponent
//! instead. That is the same below libm's own threshold `|x| < 87.33655` (`ln 2^126`): there
//! `e^x` is normal, and so is `y 2^k`. A lane past it (an overflow, an underflow, NaN) goes to
//! `libm::expf` itself. The tests compare both on every f32 in the range the draws use
//! (0 down to -104) and on every 61st f32 besides.

use core::arch::x86_64::{
    __m256, __m256i, _mm256_add_epi32, _mm256_add_ps, _mm256_and_si256, _mm256_blendv_ps,
    _mm256_castps_si256, _mm256_castsi256_ps, _mm256_cmpgt_epi32, _mm256_cvtepi32_ps,
    _mm256_cvttps_epi32, _mm256_div_ps, _mm256_movemask_ps, _mm256_mul_ps, _mm256_or_si256,
    _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_si256, _mm256_slli_epi32, _mm256_srai_epi32,
    _mm256_storeu_ps, _mm256_sub_ps,
};

use super::{load, load_padded};
use crate::tensor::LANES;

/// `out[i] = libm::expf((z[i] - max) / temperature)`, bit for bit, for `z` and `out` of the
/// same length. `temperature` 1 divides exactly, so it also gives `expf(z[i] - max)`.
#[target_feature(enable = "avx2")]
pub(crate) fn exp_weights(z: &[f32], max: f32, temperature: f32, out: &mut [f32]) {
    assert_eq!(z.len(), out.len(), "one weight per logit");
    let (max, temperature) = (_mm256_set1_ps(max), _mm256_set1_ps(temperature));
    let (z_chunks, z_tail) = z.as_chunks::<LANES>();
    let (out_chunks, out_tail) = out.as_chunks_mut::<LANES>();
    for (z, out) in z_chunks.iter().zip(out_chunks) {
        *out = exp_lanes(_mm256_div_ps(_mm256_sub_ps(load(z), max), temperature));
    }
    if !z_tail.is_empty() {
        let x = _mm256_div_ps(_mm256_sub_ps(load_padded(z_tail), max), temperature);
        out_tail.copy_from_slice(&exp_lanes(x)[..z_tail.len()]);
    }
}

/// `libm::expf` of each lane: its steps on 8 lanes, and `libm::expf` itself for the lanes
/// where it would take a rare branch (see the module documentation).
#[inline]
#[target_feature(enable = "avx2")]
fn exp_lanes(x: __m256) -> [f32; LANES] {
    // The constants of libm's `expf.rs` (by their bits, as its comments give them), and its
    // thresholds on the bits of |x|.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    const P1: f32 = f32::from_bits(0x3e2a_aa8f);
    const P2: f32 = f32::from_bits(0xbb35_5215);
    const RARE: i32 = 0x42ae_ac50; // |x| >= 87.33655: overflow, underflow or NaN
    const WIDE: i32 = 0x3f85_1592; // |x| > 1.5 ln 2: k = trunc(x / ln 2 +- 0.5)
    const MIDDLE: i32 = 0x3eb1_7218; // |x| > 0.5 ln 2: k = +-1
    const TINY: i32 = 0x3900_0000; // |x| <= 2^-14: 1 + x
    let bits = _mm256_castps_si256(x);
    let magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
    // -1 in the lanes of negative x, 0 elsewhere.
    let negative = _mm256_srai_epi32::<31>(bits);
    // HALF[sign]: 0.5 with the sign of x.
    let sign_bit = _mm256_and_si256(bits, _mm256_set1_epi32(i32::MIN));
    let half = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_castps_si256(_mm256_set1_ps(0.5)),
        sign_bit,
    ));
    let wide_k = _mm256_cvttps_epi32(_mm256_add_ps(
        _mm256_mul_ps(_mm256_set1_ps(INV_LN2), x),
        half,
    ));
    // 1 - sign - sign: -1 for negative x, 1 otherwise.
    let middle_k = _mm256_or_si256(negative, _mm256_set1_epi32(1));
    let k = select_epi32(
        above(magnitude, WIDE),
        wide_k,
        select_epi32(above(magnitude, MIDDLE), middle_k, _mm256_setzero_si256()),
    );
    // With k = 0 these give hi = x and lo = +0, as libm's own k = 0 branch sets them.
    let kf = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI)));
    let lo = _mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO));
    let r = _mm256_sub_ps(hi, lo);
    let rr = _mm256_mul_ps(r, r);
    let poly = _mm256_add_ps(_mm256_set1_ps(P1), _mm256_mul_ps(rr, _mm256_set1_ps(P2)));
    let c = _mm256_sub_ps(r, _mm256_mul_ps(rr, poly));
    let ratio = _mm256_div_ps(_mm256_mul_ps(r, c), _mm256_sub_ps(_mm256_set1_ps(2.0), c));
    let one = _mm256_set1_ps(1.0);
    let y = _mm256_add_ps(one, _mm256_add_ps(_mm256_sub_ps(ratio, lo), hi));
    // scalbnf(y, k) for a normal result: k added to the exponent.
    let scaled = _mm256_castsi256_ps(_mm256_add_epi32(
        _mm256_castps_si256(y),
        _mm256_slli_epi32::<23>(k),
    ));
    let tiny = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(TINY + 1), magnitude));
    let result = _mm256_blendv_ps(scaled, _mm256_add_ps(one, x), tiny);
    let rare = above(magnitude, RARE - 1);
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` is 8 f32, the 32 bytes stored; no alignment is required.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), result) };
    let mut rare = _mm256_movemask_ps(_mm256_castsi256_ps(rare));
    if rare != 0 {
        let mut inputs = [0.0f32; LANES];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(inputs.as_mut_ptr(), x) };
        while rare != 0 {
            let lane = rare.trailing_zeros() as usize;
            lanes[lane] = libm::expf(inputs[lane]);
            rare &= rare - 1;
        }
    }
    lanes
}

/// All ones in the lanes where `magnitude > threshold`.
#[inline]
#[target_feature(enable = "avx2")]
fn above(magnitude: __m256i, threshold: i32) -> __m256i {
    _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(threshold))
}

/// `yes` in the lanes where `mask` is all ones, `no` elsewhere.
#[inline]
#[target_feature(enable = "avx2")]
fn select_epi32(mask: __m256i, yes: __m256i, no: __m256i) -> __m256i {
    let (mask, yes, no) = (
        _mm256_castsi256_ps(mask),
        _mm256_castsi256_ps(yes),
        _mm256_castsi256_ps(no),
    );
    _mm256_castps_si256(_mm256_blendv_ps(no, yes, mask))
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::exp_weights;
    use crate::Kernels;
    use crate::avx::tests::same_bits;

    /// `exp_weights(z, max, temperature)` against `libm::expf` on every `z` of `bits`, in calls
    /// of `len` values (so both whole chunks and a partial last chunk).
    fn check_exp(bits: impl Iterator<Item = u32>, max: f32, temperature: f32, len: usize) {
        let z: Vec<f32> = bits.map(f32::from_bits).collect();
        let mut got = vec![0.0f32; z.len()];
        for (z, got) in z.chunks(len).zip(got.chunks_mut(len)) {
            // SAFETY: the callers checked that `Kernels::detect` found AVX2 and F16C.
            unsafe { exp_weights(z, max, temperature, got) };
        }
        for (&z, got) in z.iter().zip(got) {
            let want = libm::expf((z - max) / temperature);
            assert!(
                same_bits(got, want),
                "expf(({z:e} - {max:e}) / {temperature}) = {got:e}, libm {want:e}"
            );
        }
    }

    #[test]
    fn exp_weights_are_libm_expf_bit_for_bit() {
        if !Kernels::detect().avx2() {
            return;
        }
        // Every argument a draw can have: -0 down to -104, below which expf is 0.
        let negative = 0x8000_0000u32..=0xc2d0_0000;
        for start in negative.clone().step_by(1 << 20) {
            check_exp(
                start..start.saturating_add(1 << 20).min(0xc2d0_0001),
                0.0,
                1.0,
                4096,
            );
        }
        // Every exponent of both signs, NaN and the infinities, in calls of 27 like a draw's.
        check_exp((0..=u32::MAX).step_by(61), 0.0, 1.0, 27);
        // The subtraction and the division by a temperature.
        check_exp((0x8000_0000u32..=0xc300_0000).step_by(997), 3.5, 0.8, 27);
        check_exp((0..=0x4300_0000u32).step_by(997), -1.25, 1.7, 27);
    }
}
