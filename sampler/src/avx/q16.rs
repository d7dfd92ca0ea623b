//! A q8 model's draw weights (`crate::sample::q16`) with AVX2, 4 at a time in 64-bit lanes
//! ([`weights`]), and with AVX-512, 8 at a time ([`weights_avx512`]): the same integers as the
//! portable loop of [`exp2_neg`](crate::sample::q16::exp2_neg) over the logits.
//!
//! Why it is the same: every step is an exact integer operation of the portable code on the
//! same operands. Its 64-bit products are `vpmuludq`'s, which multiplies the low 32 bits of
//! two lanes into 64 exactly; each operand fits 32 bits: the distance below the largest logit
//! is at most `2^25` (the loader's logit bound) and the scale a `u32`; the remainder of a
//! sixteenth is below `2^12` and `ln 2` in Q31 below `2^31`; the polynomial's `x` is below
//! `2^27` and each of its steps within `(0, 2^31]`; a table entry is a `u32` and `e^-x` at most
//! `2^31`. The shifts are `vpsrlq` and `vpsrlvq`, logical like the portable code's on `u64`, and
//! the table of sixteenths is read by two `vpermd` and a blend (AVX-512: one `vpermd`). The
//! AVX-512 code takes the same steps on twice the lanes, the weights past `ZERO_FROM` cleared
//! by a mask instead of a blend.

use core::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm_cvtsi32_si128, _mm_loadu_si128, _mm_set1_epi32,
    _mm_storeu_si128, _mm_sub_epi32, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256,
    _mm256_blendv_epi8, _mm256_castsi256_si128, _mm256_cmpgt_epi32, _mm256_cmpgt_epi64,
    _mm256_cvtepu32_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_permutevar8x32_epi32,
    _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_sllv_epi64, _mm256_srl_epi64,
    _mm256_srli_epi64, _mm256_srlv_epi64, _mm256_storeu_si256, _mm256_sub_epi32, _mm256_sub_epi64,
    _mm512_add_epi64, _mm512_and_si512, _mm512_cmpgt_epi64_mask, _mm512_cvtepi64_epi32,
    _mm512_cvtepu32_epi64, _mm512_loadu_si512, _mm512_maskz_mov_epi64, _mm512_mul_epu32,
    _mm512_permutexvar_epi32, _mm512_set1_epi64, _mm512_sllv_epi64, _mm512_srl_epi64,
    _mm512_srli_epi64, _mm512_srlv_epi64, _mm512_sub_epi64,
};

use crate::sample::q16::{EXP2_SIXTEENTHS, LN2_Q31, ONE_Q31, WEIGHT_BITS, ZERO_FROM};

/// Logits per vector.
const LANES: usize = 4;

/// `out[i] = exp2_neg((max - q[i]) * scale >> shift)` for `out` as long as `q`: the weights of
/// the portable draw, for logits `q` none of which is above `max` and `shift <= 63`. Panics if
/// the lengths differ.
#[target_feature(enable = "avx2")]
pub(crate) fn weights(q: &[i32], max: i32, scale: u32, shift: u32, out: &mut [u32]) {
    assert_eq!(q.len(), out.len(), "one weight per logit");
    let table = Table::new();
    let max = _mm_set1_epi32(max);
    let scale = _mm256_set1_epi64x(i64::from(scale));
    let shift = _mm_cvtsi32_si128(shift as i32);
    let (chunks, tail) = q.as_chunks::<LANES>();
    let (out_chunks, out_tail) = out.as_chunks_mut::<LANES>();
    let below = |q: &[i32; LANES]| {
        // SAFETY: `q` is the 16 bytes read; no alignment is required.
        let q = unsafe { _mm_loadu_si128(q.as_ptr().cast()) };
        // `max - q` is the portable `abs_diff`: no logit is above `max`.
        _mm256_cvtepu32_epi64(_mm_sub_epi32(max, q))
    };
    let y = |below| _mm256_srl_epi64(_mm256_mul_epu32(below, scale), shift);
    for (q, out) in chunks.iter().zip(out_chunks) {
        *out = narrow(exp2_neg(y(below(q)), &table));
    }
    if !tail.is_empty() {
        // The lanes past the logits repeat the last; only the real ones are kept.
        let padded = core::array::from_fn(|i| tail[i.min(tail.len() - 1)]);
        let weights = narrow(exp2_neg(y(below(&padded)), &table));
        out_tail.copy_from_slice(&weights[..tail.len()]);
    }
}

/// [`weights`] with AVX-512 F, 8 at a time: the same integers.
#[target_feature(enable = "avx2,avx512f")]
pub(crate) fn weights_avx512(q: &[i32], max: i32, scale: u32, shift: u32, out: &mut [u32]) {
    assert_eq!(q.len(), out.len(), "one weight per logit");
    // SAFETY: the table is 16 u32, the 64 bytes read; no alignment is required.
    let table = unsafe { _mm512_loadu_si512(EXP2_SIXTEENTHS.as_ptr().cast()) };
    let max = _mm256_set1_epi32(max);
    let scale = _mm512_set1_epi64(i64::from(scale));
    let shift = _mm_cvtsi32_si128(shift as i32);
    let (chunks, tail) = q.as_chunks::<WIDE>();
    let (out_chunks, out_tail) = out.as_chunks_mut::<WIDE>();
    let weights = |q: &[i32; WIDE]| {
        // SAFETY: `q` is the 32 bytes read; no alignment is required.
        let q = unsafe { _mm256_loadu_si256(q.as_ptr().cast()) };
        // `max - q` is the portable `abs_diff`: no logit is above `max`.
        let below = _mm512_cvtepu32_epi64(_mm256_sub_epi32(max, q));
        let y = _mm512_srl_epi64(_mm512_mul_epu32(below, scale), shift);
        let mut weights = [0u32; WIDE];
        // SAFETY: `weights` is the 32 bytes stored; no alignment is required.
        unsafe { _mm256_storeu_si256(weights.as_mut_ptr().cast(), exp2_neg_avx512(y, table)) };
        weights
    };
    for (q, out) in chunks.iter().zip(out_chunks) {
        *out = weights(q);
    }
    if !tail.is_empty() {
        // The lanes past the logits repeat the last; only the real ones are kept.
        let padded = core::array::from_fn(|i| tail[i.min(tail.len() - 1)]);
        out_tail.copy_from_slice(&weights(&padded)[..tail.len()]);
    }
}

/// Logits per AVX-512 vector.
const WIDE: usize = 2 * LANES;

/// [`exp2_neg`] of the 8 lanes `y`, narrowed to 32 bits, with [`EXP2_SIXTEENTHS`] in `table`.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn exp2_neg_avx512(y: __m512i, table: __m512i) -> __m256i {
    let zero = _mm512_cmpgt_epi64_mask(y, _mm512_set1_epi64(ZERO_FROM as i64 - 1));
    let whole = _mm512_srli_epi64::<16>(y);
    let sixteenth = _mm512_and_si512(_mm512_srli_epi64::<12>(y), _mm512_set1_epi64(15));
    let rest = _mm512_and_si512(y, _mm512_set1_epi64(0xfff));
    let x = _mm512_srli_epi64::<16>(_mm512_mul_epu32(rest, _mm512_set1_epi64(LN2_Q31 as i64)));
    // e^-x = 1 - x (1 - x (1/2 - x (1/6 - x / 24))), every step within (0, 1].
    let step = |c: u64, inner: __m512i| {
        let product = _mm512_srli_epi64::<31>(_mm512_mul_epu32(x, inner));
        _mm512_sub_epi64(_mm512_set1_epi64(c as i64), product)
    };
    let sixth = step(ONE_Q31 / 6, _mm512_set1_epi64((ONE_Q31 / 24) as i64));
    let e = step(ONE_Q31, step(ONE_Q31, step(ONE_Q31 / 2, sixth)));
    // `vpermd` reads each 32-bit lane's low 4 bits: the low half of each 64-bit lane holds
    // `j`, and its product reads only the low half.
    let product = _mm512_mul_epu32(_mm512_permutexvar_epi32(sixteenth, table), e);
    // Q62 to the weight's fixed point, divided by 2^whole, rounded to nearest.
    let shift = _mm512_add_epi64(whole, _mm512_set1_epi64(i64::from(62 - WEIGHT_BITS)));
    let one = _mm512_set1_epi64(1);
    let half = _mm512_sllv_epi64(one, _mm512_sub_epi64(shift, one));
    let weight = _mm512_srlv_epi64(_mm512_add_epi64(product, half), shift);
    _mm512_cvtepi64_epi32(_mm512_maskz_mov_epi64(!zero, weight))
}

/// [`exp2_neg`](crate::sample::q16::exp2_neg) of the 4 lanes `y`, each weight in its lane's low 32 bits.
#[inline]
#[target_feature(enable = "avx2")]
fn exp2_neg(y: __m256i, table: &Table) -> __m256i {
    let zero = _mm256_cmpgt_epi64(y, _mm256_set1_epi64x(ZERO_FROM as i64 - 1));
    let whole = _mm256_srli_epi64::<16>(y);
    let sixteenth = _mm256_and_si256(_mm256_srli_epi64::<12>(y), _mm256_set1_epi64x(15));
    let rest = _mm256_and_si256(y, _mm256_set1_epi64x(0xfff));
    let x = _mm256_srli_epi64::<16>(_mm256_mul_epu32(rest, _mm256_set1_epi64x(LN2_Q31 as i64)));
    // e^-x = 1 - x (1 - x (1/2 - x (1/6 - x / 24))), every step within (0, 1].
    let step = |c: u64, inner: __m256i| {
        let product = _mm256_srli_epi64::<31>(_mm256_mul_epu32(x, inner));
        _mm256_sub_epi64(_mm256_set1_epi64x(c as i64), product)
    };
    let sixth = step(ONE_Q31 / 6, _mm256_set1_epi64x((ONE_Q31 / 24) as i64));
    let e = step(ONE_Q31, step(ONE_Q31, step(ONE_Q31 / 2, sixth)));
    let product = _mm256_mul_epu32(table.lookup(sixteenth), e);
    // Q62 to the weight's fixed point, divided by 2^whole, rounded to nearest.
    let shift = _mm256_add_epi64(whole, _mm256_set1_epi64x(i64::from(62 - WEIGHT_BITS)));
    let one = _mm256_set1_epi64x(1);
    let half = _mm256_sllv_epi64(one, _mm256_sub_epi64(shift, one));
    let weight = _mm256_srlv_epi64(_mm256_add_epi64(product, half), shift);
    _mm256_andnot_si256(zero, weight)
}

/// The low 32 bits of each of the 4 lanes of `w`, in order.
#[inline]
#[target_feature(enable = "avx2")]
fn narrow(w: __m256i) -> [u32; LANES] {
    let low = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0));
    let mut out = [0u32; LANES];
    let low: __m128i = _mm256_castsi256_si128(low);
    // SAFETY: `out` is the 16 bytes stored; no alignment is required.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), low) };
    out
}

/// [`EXP2_SIXTEENTHS`] in two vectors of 8, for `vpermd`.
struct Table([__m256i; 2]);

impl Table {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        let (halves, _) = EXP2_SIXTEENTHS.as_chunks::<8>();
        // SAFETY: each half is 8 u32, the 32 bytes read; no alignment is required.
        let load = |h: &[u32; 8]| unsafe { _mm256_loadu_si256(h.as_ptr().cast()) };
        Self([load(&halves[0]), load(&halves[1])])
    }

    /// Entry `j` for each 64-bit lane's `j` (`0..16`), in the lane's low 32 bits.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lookup(&self, j: __m256i) -> __m256i {
        // `vpermd` reads each 32-bit lane's low 3 bits: the low half of each 64-bit lane
        // holds `j`, whose bit 3 picks the table's half.
        let low = _mm256_permutevar8x32_epi32(self.0[0], j);
        let high = _mm256_permutevar8x32_epi32(self.0[1], j);
        _mm256_blendv_epi8(low, high, _mm256_cmpgt_epi32(j, _mm256_set1_epi32(7)))
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use namegen_model::Rng;
    use namegen_model::q8::MAX_LOGIT;

    use super::{weights, weights_avx512};
    use crate::Kernels;
    use crate::sample::q16::{ZERO_FROM, exp2_neg};

    /// `weights`, and `weights_avx512` where the CPU runs it, against the portable loop for
    /// logits `q` below `max`.
    fn check(q: &[i32], max: i32, scale: u32, shift: u32) {
        let mut got = std::vec![0u32; q.len()];
        let mut wide = got.clone();
        // SAFETY: the caller checked that the CPU runs AVX2.
        unsafe { weights(q, max, scale, shift, &mut got) };
        if Kernels::Avx512Vnni.runs_here() {
            // SAFETY: the CPU runs AVX-512 F (and the rest of the AVX-512 kernels' sets).
            unsafe { weights_avx512(q, max, scale, shift, &mut wide) };
        } else {
            wide.clone_from(&got);
        }
        for ((&v, got), wide) in q.iter().zip(got).zip(wide) {
            let want = exp2_neg((u64::from(max.abs_diff(v)) * u64::from(scale)) >> shift);
            assert_eq!(got, want, "q {v} max {max} scale {scale} shift {shift}");
            assert_eq!(
                wide, want,
                "AVX-512: q {v} max {max} scale {scale} shift {shift}"
            );
        }
    }

    /// Every exponent that leaves a weight and the first past them (scale 1, shift 0: the
    /// distance is the exponent), then random logits, scales and shifts over the whole
    /// domain, at every length up to 17 (both kernels' tail lanes).
    #[test]
    fn weights_are_the_portable_ones() {
        if !Kernels::detect().avx2() {
            return;
        }
        let exponents: Vec<i32> = (0..=ZERO_FROM as i32 + 1).map(|y| -y).collect();
        check(&exponents, 0, 1, 0);
        let mut rng = Rng::new(16);
        let max_logit = MAX_LOGIT as i32;
        for _ in 0..20_000 {
            let len = 1 + rng.below(17) as usize;
            let max = rng.below(2 * max_logit as u32 + 1) as i32 - max_logit;
            let q: Vec<i32> = (0..len)
                .map(|_| max - rng.below((max + max_logit) as u32 + 1) as i32)
                .collect();
            let (scale, shift) = (rng.next_u32(), rng.below(64));
            check(&q, max, scale, shift);
            // Temperatures near 1: scales of 32 significant bits, shifts about 31.
            check(&q, max, rng.next_u32() | 1 << 31, 28 + rng.below(8));
        }
    }
}
