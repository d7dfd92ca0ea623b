//! The one-name forward pass's matrix-vector product `out = W x`, bit for bit
//! [`Matrix::matvec`].
//!
//! Why it is the same: every row keeps the 8 partial sums of [`crate::tensor::dot_f32`] in
//! two registers (element `j` into lane `j % 8`: lanes 0..4 in the first, 4..8 in the second,
//! chunk after chunk, a multiply then an add, `sum + w * x` with the operands in that order),
//! and [`combine`] adds them in the tree `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`, the same
//! additions of the same operands in the same order, for 4 rows at once; the i8 scale
//! multiplies the sum last. A row's last, partial chunk is read into a chunk of zero bytes
//! (+0 in every dtype) and meets +0 inputs past the row's end: a partial sum starts at +0 and
//! never becomes -0 (an exact cancellation gives +0), so adding +0 leaves it as it was.

use core::arch::wasm32::{
    f32x4, f32x4_add, f32x4_mul, f32x4_splat, i32x4_shuffle, v128, v128_store,
};

use namegen_model::Dtype;

use super::{decode, load_half};
use crate::tensor::{LANES, Matrix};

/// Rows computed together: 4 rows of 2 registers of sums, combined into one register.
const ROWS: usize = 4;

/// `out = W x`, bit for bit [`Matrix::matvec`]. Panics if `x` or `out` has the wrong length.
pub(super) fn matvec(matrix: &Matrix<'_>, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(out.len(), matrix.rows(), "one output per row");
    match matrix.dtype() {
        Dtype::F32 => kernel::<32>(matrix, x, out),
        Dtype::F16 => kernel::<16>(matrix, x, out),
        // q8's codes, unscaled: the portable code's f32 reading of them.
        Dtype::I8 | Dtype::Q8 => kernel::<8>(matrix, x, out),
    }
}

/// [`matvec`] for the dtype of `CHUNK` bytes per `LANES` values. The 4 rows are written out
/// one by one, in named variables, and addressed by pointers whose bounds are checked once per
/// matrix: the module is built for size, which neither unrolls loops (an array of sums
/// indexed in a loop would live in memory) nor inlines slice indexing.
#[inline(always)]
fn kernel<const CHUNK: usize>(matrix: &Matrix<'_>, x: &[f32], out: &mut [f32]) {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let n = x_chunks.len();
    let mut x_last = [0.0f32; LANES];
    x_last[..x_tail.len()].copy_from_slice(x_tail);
    let x_last = [load_half(&x_last, 0), load_half(&x_last, 1)];
    let row_len = matrix.cols() * CHUNK / LANES;
    let data = matrix.bytes();
    assert_eq!(data.len(), matrix.rows() * row_len, "one row per output");
    let last_row = matrix.rows().saturating_sub(1);
    for (block, out) in out.chunks_mut(ROWS).enumerate() {
        let first = block * ROWS;
        // A block past the last row repeats it, and only the real rows are stored.
        // SAFETY: each row is at most `last_row`, so it starts inside `data`, which holds
        // `rows * row_len` bytes (asserted above); `out` is not empty, so there is a row.
        let [r0, r1, r2, r3] = core::array::from_fn(|r| unsafe {
            data.as_ptr().add((first + r).min(last_row) * row_len)
        });
        let zero = f32x4_splat(0.0);
        let (mut s0, mut s1, mut s2, mut s3) = ([zero; 2], [zero; 2], [zero; 2], [zero; 2]);
        for (i, xs) in x_chunks.iter().enumerate() {
            let xs = [load_half(xs, 0), load_half(xs, 1)];
            let at = i * CHUNK;
            // SAFETY: chunk `i < n` of a row ends at `(i + 1) * CHUNK <= n * CHUNK`, within
            // the row's `row_len` bytes.
            unsafe {
                accumulate(&mut s0, decode::<CHUNK>(r0.add(at)), xs);
                accumulate(&mut s1, decode::<CHUNK>(r1.add(at)), xs);
                accumulate(&mut s2, decode::<CHUNK>(r2.add(at)), xs);
                accumulate(&mut s3, decode::<CHUNK>(r3.add(at)), xs);
            }
        }
        if !x_tail.is_empty() {
            let (at, len) = (n * CHUNK, row_len - n * CHUNK);
            // SAFETY: the last `len` bytes of each row, within it; `tail` reads the
            // `CHUNK` bytes of its own array.
            unsafe {
                accumulate(
                    &mut s0,
                    decode::<CHUNK>(tail::<CHUNK>(r0.add(at), len).as_ptr()),
                    x_last,
                );
                accumulate(
                    &mut s1,
                    decode::<CHUNK>(tail::<CHUNK>(r1.add(at), len).as_ptr()),
                    x_last,
                );
                accumulate(
                    &mut s2,
                    decode::<CHUNK>(tail::<CHUNK>(r2.add(at), len).as_ptr()),
                    x_last,
                );
                accumulate(
                    &mut s3,
                    decode::<CHUNK>(tail::<CHUNK>(r3.add(at), len).as_ptr()),
                    x_last,
                );
            }
        }
        store(matrix, first, combine(s0, s1, s2, s3), out);
    }
}

/// The `len < CHUNK` bytes at `bytes` followed by zero bytes (+0 in every dtype).
///
/// # Safety
///
/// `len` bytes from `bytes` on must be readable.
#[inline(always)]
unsafe fn tail<const CHUNK: usize>(bytes: *const u8, len: usize) -> [u8; CHUNK] {
    let mut chunk = [0u8; CHUNK];
    // SAFETY: the caller guarantees the `len` bytes read, and `len < CHUNK` fit `chunk`.
    unsafe { core::ptr::copy_nonoverlapping(bytes, chunk.as_mut_ptr(), len.min(CHUNK)) };
    chunk
}

/// `sum + w * x`, lane by lane, for both registers of a row.
#[inline(always)]
fn accumulate(sum: &mut [v128; 2], w: [v128; 2], x: [v128; 2]) {
    sum[0] = f32x4_add(sum[0], f32x4_mul(w[0], x[0]));
    sum[1] = f32x4_add(sum[1], f32x4_mul(w[1], x[1]));
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
