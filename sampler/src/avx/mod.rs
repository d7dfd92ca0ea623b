//! Kernels for x86_64 hosts with AVX2 and F16C, written with intrinsics because the compiler
//! does not find these schedules on its own. They run only for a view whose
//! [`crate::Kernels`] are `Avx2`, which it holds only when `Kernels::detect` found both
//! instruction sets. Each computes the same bits as the portable code it stands in for (Rust
//! neither fuses nor reassociates float operations, so the same operations on the same
//! operands in the same order round the same way), and its file says why:
//!
//! - [`matvec`](mod@matvec): the one-name forward pass's matrix-vector product, the same bits
//!   as [`crate::Matrix::matvec`], from the weights in place or from a [`Packed`] copy;
//! - [`activation`]: its bias and `tanh`, the same bits as [`crate::math::tanh`];
//! - [`group`]: the batched generator's product of a group of contexts, the same bits as
//!   [`crate::Matrix::matmul_group`], and its bias and `tanh`;
//! - [`exp`]: the draw's weights `expf((z - m) / T)`, the same bits as `libm::expf`;
//! - [`q8`](mod@q8): a layer of the q8 integer network, the same integers as `crate::q8`
//!   (with AVX-VNNI too, for [`crate::Kernels::Avx2Vnni`], and the whole pass with AVX-512
//!   for [`crate::Kernels::Avx512Vnni`]);
//! - [`q16`]: a q8 model's draw weights, the same integers as `crate::sample::q16`.
//!
//! # Decoding
//!
//! Decoding the stored values ([`decode`]) is exact: f16 through F16C's `vcvtph2ps` (the tests
//! compare it with [`crate::tensor::f16_to_f32`] on all 65,536 patterns) and i8 through
//! integer widening.

use core::arch::x86_64::{
    __m256, _mm_loadl_epi64, _mm_loadu_si128, _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps,
    _mm256_cvtph_ps, _mm256_loadu_ps,
};

use crate::tensor::LANES;

mod activation;
mod exp;
mod group;
mod matvec;
#[cfg(feature = "q8")]
pub(crate) mod q16;
#[cfg(feature = "q8")]
pub(crate) mod q8;

pub(crate) use activation::finish;
pub(crate) use exp::exp_weights;
pub(crate) use group::{finish_group, matmul_group};
pub(crate) use matvec::{Packed, matvec, matvec_packed};

/// The `LANES` values stored in the `CHUNK` bytes at `bytes`, widened exactly: f32 when
/// `CHUNK` is 32, f16 (F16C) when 16, i8 when 8.
///
/// # Safety
/// `CHUNK` bytes from `bytes` on must be readable; no alignment is required.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn decode<const CHUNK: usize>(bytes: *const u8) -> __m256 {
    match CHUNK {
        // SAFETY: the caller guarantees the 32 bytes read; unaligned loads.
        32 => unsafe { _mm256_loadu_ps(bytes.cast()) },
        // SAFETY: the caller guarantees the 16 bytes read; unaligned loads.
        16 => _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bytes.cast()) }),
        _ => {
            // SAFETY: the caller guarantees the 8 bytes read; unaligned loads.
            let low = unsafe { _mm_loadl_epi64(bytes.cast()) };
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(low))
        }
    }
}

/// Eight values from `x`.
#[inline]
#[target_feature(enable = "avx2")]
fn load(x: &[f32; LANES]) -> __m256 {
    // SAFETY: `x` is 8 f32, the 32 bytes read; no alignment is required.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// The up to `LANES` values of `values`, the lanes past them +0. Panics on more.
#[inline]
#[target_feature(enable = "avx2")]
fn load_padded(values: &[f32]) -> __m256 {
    let mut padded = [0.0f32; LANES];
    padded[..values.len()].copy_from_slice(values);
    load(&padded)
}

#[cfg(test)]
mod tests {
    use super::{LANES, decode};
    use crate::Kernels;
    use crate::tensor::f16_to_f32;

    /// The same bits, or NaN both (a NaN's payload is not part of either function's result).
    pub(super) fn same_bits(got: f32, want: f32) -> bool {
        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
    }

    #[test]
    fn f16c_decodes_every_bit_pattern_as_the_portable_code() {
        if !Kernels::detect().avx2() {
            return;
        }
        for first in (0..=u16::MAX).step_by(LANES) {
            let patterns: [u16; LANES] = core::array::from_fn(|i| first + i as u16);
            let mut bytes = [0u8; 16];
            for (chunk, bits) in bytes.chunks_exact_mut(2).zip(patterns) {
                chunk.copy_from_slice(&bits.to_le_bytes());
            }
            let mut got = [0.0f32; LANES];
            // SAFETY: `Kernels::detect` found AVX2 and F16C above; `got` is the 32 bytes stored.
            unsafe {
                core::arch::x86_64::_mm256_storeu_ps(
                    got.as_mut_ptr(),
                    decode::<16>(bytes.as_ptr()),
                );
            }
            for (got, bits) in got.into_iter().zip(patterns) {
                assert_eq!(got.to_bits(), f16_to_f32(bits).to_bits(), "{bits:#06x}");
            }
        }
    }
}
