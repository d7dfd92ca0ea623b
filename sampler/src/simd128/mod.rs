//! Kernels for WASM builds compiled with the `simd128` target feature (4-lane f32), written
//! with `core::arch::wasm32` intrinsics because the compiler does not vectorise the portable
//! code in the size-first build the module ships. A module built without `simd128` runs the
//! portable code; engines without SIMD cannot load one built with it, so the page picks
//! between the two builds (`sampler/wasm/README.md`). Each kernel computes the same bits as
//! the portable code it stands in for (the same operations on the same operands in the same
//! order; WASM, like Rust, neither fuses nor reassociates), and its file says why:
//!
//! - [`pack`]: the copy of a float model's weights the products read, each value decoded
//!   exactly, made once ([`crate::ModelView::pack_weights_into`]);
//! - [`matvec`](mod@matvec): the one-name forward pass's matrix-vector product from that copy,
//!   the same bits as [`crate::Matrix::matvec`];
//! - [`activation`]: its bias and `tanh`, the same bits as [`crate::math::tanh`].
//!
//! A view without the packed copy computes the same products one weight at a time
//! ([`crate::Matrix::matvec_compact`]).

use core::arch::wasm32::{v128, v128_load};

use crate::tensor::LANES;
use crate::view::Layer;

mod activation;
mod matvec;
pub(crate) mod pack;

pub(crate) use pack::Packed;

/// One layer on the `width` inputs in `x`, bit for bit the portable code
/// ([`crate::Matrix::matvec`], then [`crate::forward::finish`]): `out = W x + b`, then `tanh`
/// if `activate`, written back into `x`; with these kernels where the view has the layer's
/// packed copy, `packed`.
#[inline]
pub(crate) fn apply(
    layer: &Layer<'_>,
    packed: Option<&[f32]>,
    x: &mut [f32],
    width: usize,
    out: &mut [f32],
    activate: bool,
) {
    match packed {
        Some(packed) => matvec::matvec(&layer.weight, packed, &x[..width], out),
        None => layer.weight.matvec_compact(&x[..width], out),
    }
    activation::finish(layer, out, x, activate);
}

/// Four values from `x`, lanes `4 * half..4 * half + 4` of a chunk.
#[inline(always)]
fn load_half(x: &[f32; LANES], half: usize) -> v128 {
    assert!(half < 2, "a chunk is two halves");
    // SAFETY: values `4 * half..4 * half + 4` of the 8 in `x` are the 16 bytes read; no
    // alignment is needed.
    unsafe { v128_load(x.as_ptr().add(4 * half).cast()) }
}
