//! Kernels for WASM builds compiled with the `simd128` target feature (4-lane f32), written
//! with `core::arch::wasm32` intrinsics because the compiler does not vectorise the portable
//! code in the size-first build the module ships. A module built without `simd128` runs the
//! portable code; engines without SIMD cannot load one built with it, so the page picks
//! between the two builds (`sampler/wasm/README.md`). Each kernel computes the same bits as
//! the portable code it stands in for (the same operations on the same operands in the same
//! order; WASM, like Rust, neither fuses nor reassociates), and its file says why:
//!
//! - [`matvec`](mod@matvec): the one-name forward pass's matrix-vector product, the same bits
//!   as [`crate::Matrix::matvec`];
//! - [`activation`]: its bias and `tanh`, the same bits as [`crate::math::tanh`].
//!
//! Decoding the stored values ([`decode`]) is exact: f32 is loaded as it is, f16 widened by
//! [`crate::tensor::f16_to_f32`]'s integer steps on 4 lanes, i8 by integer widening.

use core::arch::wasm32::{
    f32x4_convert_i32x4, f32x4_mul, i16x8_extend_low_i8x16, i32x4_extend_high_i16x8,
    i32x4_extend_low_i16x8, i32x4_shl, u32x4_extend_high_u16x8, u32x4_extend_low_u16x8, v128,
    v128_load, v128_load64_zero,
};

use crate::tensor::LANES;
use crate::view::Layer;

mod activation;
mod matvec;

/// One layer on the `width` inputs in `x`, bit for bit the portable code of
/// [`crate::forward::apply`]: `out = W x + b`, then `tanh` if `activate`, written back into `x`.
#[inline]
pub(crate) fn apply(
    layer: &Layer<'_>,
    x: &mut [f32],
    width: usize,
    out: &mut [f32],
    activate: bool,
) {
    matvec::matvec(&layer.weight, &x[..width], out);
    activation::finish(layer, out, x, activate);
}

/// The `LANES` values stored in the `CHUNK` bytes at `bytes`, widened exactly, as lanes 0..4
/// and 4..8: f32 when `CHUNK` is 32, f16 when 16, i8 when 8.
///
/// # Safety
///
/// `CHUNK` bytes from `bytes` on must be readable; no alignment is needed.
#[inline(always)]
unsafe fn decode<const CHUNK: usize>(bytes: *const u8) -> [v128; 2] {
    match CHUNK {
        // SAFETY: the caller guarantees the 32 bytes of the two 16-byte loads.
        32 => unsafe { [v128_load(bytes.cast()), v128_load(bytes.add(16).cast())] },
        16 => {
            // SAFETY: the caller guarantees the 16 bytes read.
            let halves = unsafe { v128_load(bytes.cast()) };
            [
                f16_lanes(u32x4_extend_low_u16x8(halves)),
                f16_lanes(u32x4_extend_high_u16x8(halves)),
            ]
        }
        _ => {
            // SAFETY: the caller guarantees the 8 bytes read.
            let bytes = i16x8_extend_low_i8x16(unsafe { v128_load64_zero(bytes.cast()) });
            [
                f32x4_convert_i32x4(i32x4_extend_low_i16x8(bytes)),
                f32x4_convert_i32x4(i32x4_extend_high_i16x8(bytes)),
            ]
        }
    }
}

/// [`crate::tensor::f16_to_f32`] of the f16 bits in the low half of each 32-bit lane, its
/// operations in its order.
#[inline(always)]
fn f16_lanes(bits: v128) -> v128 {
    use core::arch::wasm32::{
        f32x4_splat, i32x4_gt, u32x4_gt, u32x4_splat, v128_and, v128_bitselect, v128_or,
    };
    let sign = i32x4_shl(v128_and(bits, u32x4_splat(0x8000)), 16);
    let magnitude = v128_and(bits, u32x4_splat(0x7fff));
    let shifted = i32x4_shl(magnitude, 13);
    let finite = f32x4_mul(shifted, f32x4_splat(crate::tensor::TWO_POW_112));
    let quiet = v128_and(
        u32x4_gt(magnitude, u32x4_splat(0x7c00)),
        u32x4_splat(0x0040_0000),
    );
    let special = v128_or(v128_or(shifted, u32x4_splat(0x7f80_0000)), quiet);
    // Magnitudes are below 2^15, so the signed comparison is the unsigned one.
    let is_special = i32x4_gt(magnitude, u32x4_splat(0x7bff));
    v128_or(v128_bitselect(special, finite, is_special), sign)
}

/// Four values from `x`, lanes `4 * half..4 * half + 4` of a chunk.
#[inline(always)]
fn load_half(x: &[f32; LANES], half: usize) -> v128 {
    assert!(half < 2, "a chunk is two halves");
    // SAFETY: values `4 * half..4 * half + 4` of the 8 in `x` are the 16 bytes read; no
    // alignment is needed.
    unsafe { v128_load(x.as_ptr().add(4 * half).cast()) }
}
