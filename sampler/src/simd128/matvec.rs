//! The one-name forward pass's matrix-vector product `out = W x` from the weights' packed copy
//! ([`super::pack`]), bit for bit [`Matrix::matvec`].
//!
//! Why it is the same: every row keeps the 8 partial sums of [`crate::tensor::dot_f32`] in
//! two registers (element `j` into lane `j % 8`: lanes 0..4 in the first, 4..8 in the second,
//! chunk after chunk, a multiply then an add, `sum + w * x` with the operands in that order),
//! and [`combine`] adds them in the tree `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`, the same
//! additions of the same operands in the same order, for 4 rows at once; the i8 scale
//! multiplies the sum last. The packed values are the ones the portable code multiplies
//! (decoded exactly). A row's last, partial chunk is padded with +0 weights and meets +0
//! inputs past the row's end: a partial sum starts at +0 and never becomes -0 (an exact
//! cancellation gives +0), so adding +0 leaves it as it was.

use core::arch::wasm32::{
    f32x4, f32x4_add, f32x4_mul, f32x4_splat, i32x4_shuffle, v128, v128_load, v128_store,
};

use namegen_model::Dtype;

use super::load_half;
use super::pack::{self, CHUNK_VALUES, ROWS};
use crate::tensor::{LANES, Matrix};

/// `out = W x` from `packed`, `matrix`'s packed copy ([`super::pack`]): bit for bit
/// [`Matrix::matvec`]. Panics if `x`, `out` or `packed` has the wrong length.
pub(super) fn matvec(matrix: &Matrix<'_>, packed: &[f32], x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(out.len(), matrix.rows(), "one output per row");
    assert_eq!(packed.len(), pack::len(matrix), "the matrix's packed copy");
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let mut x_last = [0.0f32; LANES];
    x_last[..x_tail.len()].copy_from_slice(x_tail);
    let block_len = matrix.cols().div_ceil(LANES) * CHUNK_VALUES;
    for (block, (out, weights)) in out
        .chunks_mut(ROWS)
        .zip(packed.chunks_exact(block_len))
        .enumerate()
    {
        let mut w = weights.as_ptr();
        let mut sums = [f32x4_splat(0.0); 2 * ROWS];
        for xs in x_chunks {
            // SAFETY: a block holds one chunk of `CHUNK_VALUES` per chunk of `x`, the last
            // one partial or not, and `w` moves on by one chunk per chunk of `x`.
            unsafe {
                accumulate_chunk(&mut sums, w, xs);
                w = w.add(CHUNK_VALUES);
            }
        }
        if !x_tail.is_empty() {
            // SAFETY: the block's last chunk, as above.
            unsafe { accumulate_chunk(&mut sums, w, &x_last) };
        }
        let [s0, s1, s2, s3, s4, s5, s6, s7] = sums;
        store(
            matrix,
            block * ROWS,
            combine([s0, s1], [s2, s3], [s4, s5], [s6, s7]),
            out,
        );
    }
}

/// One chunk of a block: `sums[2 r + h] + w * x` for the `LANES` values of row `r` at
/// `w + LANES r`, half `h` of them, and half `h` of `x`.
///
/// # Safety
///
/// `CHUNK_VALUES` f32 from `w` on must be readable; no alignment is needed.
#[inline(always)]
unsafe fn accumulate_chunk(sums: &mut [v128; 2 * ROWS], w: *const f32, x: &[f32; LANES]) {
    let (x0, x1) = (load_half(x, 0), load_half(x, 1));
    let product = |offset: usize, x: v128| {
        // SAFETY: `offset + 4 <= CHUNK_VALUES`, within what the caller guarantees.
        f32x4_mul(unsafe { v128_load(w.add(offset).cast()) }, x)
    };
    sums[0] = f32x4_add(sums[0], product(0, x0));
    sums[1] = f32x4_add(sums[1], product(4, x1));
    sums[2] = f32x4_add(sums[2], product(8, x0));
    sums[3] = f32x4_add(sums[3], product(12, x1));
    sums[4] = f32x4_add(sums[4], product(16, x0));
    sums[5] = f32x4_add(sums[5], product(20, x1));
    sums[6] = f32x4_add(sums[6], product(24, x0));
    sums[7] = f32x4_add(sums[7], product(28, x1));
}

/// Applies the i8 row scales to the 4 rows' sums of the block that starts at row `first`, and
/// stores the block's rows that exist into `out`.
#[inline(always)]
fn store(matrix: &Matrix<'_>, first: usize, mut sums: v128, out: &mut [f32]) {
    if matrix.dtype() == Dtype::I8 {
        let last_row = matrix.rows() - 1;
        let scale = |r: usize| matrix.scale((first + r).min(last_row));
        sums = f32x4_mul(sums, f32x4(scale(0), scale(1), scale(2), scale(3)));
    }
    if out.len() == ROWS {
        // SAFETY: `out` holds the 4 f32 stored; no alignment is needed.
        unsafe { v128_store(out.as_mut_ptr().cast(), sums) };
    } else {
        let mut values = [0.0f32; ROWS];
        // SAFETY: `values` is 4 f32, the 16 bytes stored; no alignment is needed.
        unsafe { v128_store(values.as_mut_ptr().cast(), sums) };
        for (slot, value) in out.iter_mut().zip(values) {
            *slot = value;
        }
    }
}

/// Row `r`'s `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))` in lane `r`, for the 4 rows' lanes
/// `[s0..s4, s4..s8]` in `rows[r]`: the tree of [`crate::tensor::dot_f32`], level by level.
#[inline(always)]
fn combine(r0: [v128; 2], r1: [v128; 2], r2: [v128; 2], r3: [v128; 2]) -> v128 {
    // [s0+s4, s1+s5, s2+s6, s3+s7] of each row.
    let pair = |[low, high]: [v128; 2]| f32x4_add(low, high);
    let p = [pair(r0), pair(r1), pair(r2), pair(r3)];
    // [(s0+s4)+(s2+s6), (s1+s5)+(s3+s7)] of two rows.
    let pairs = |a: v128, b: v128| {
        f32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(a, b),
            i32x4_shuffle::<2, 3, 6, 7>(a, b),
        )
    };
    let (rows01, rows23) = (pairs(p[0], p[1]), pairs(p[2], p[3]));
    f32x4_add(
        i32x4_shuffle::<0, 2, 4, 6>(rows01, rows23),
        i32x4_shuffle::<1, 3, 5, 7>(rows01, rows23),
    )
}
