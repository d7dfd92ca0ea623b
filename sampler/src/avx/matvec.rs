//! The one-name forward pass's matrix-vector product `out = W x`, bit for bit
//! [`Matrix::matvec`], from the weights in place ([`matvec`]) or from a [`Packed`] copy
//! ([`matvec_packed`]).
//!
//! Why it is the same: every row keeps the 8 partial sums of [`crate::tensor::dot_f32`] in
//! one register (element `j` into lane `j % 8`, chunk after chunk, a multiply then an add,
//! never fused, `sum + w * x` with the operands in that order), and the combine tree
//! `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))` is the same additions of the same operands in the
//! same order, only for 8 rows at once ([`combine`]); the i8 scale multiplies the sum last.
//! The weights are decoded exactly (see the [parent module](super)).
//!
//! A row's last, partial chunk is read as the row's last 8 values, moved down to the lanes the
//! scalar code adds them to, and the lanes past the row's end get +0 weights and +0 inputs:
//! a partial sum starts at +0 and can never become -0 (an exact cancellation gives +0), so
//! adding +0 leaves every sum as it was. Reading backwards keeps every load inside its row,
//! so the rows are addressed with pointers whose bounds are checked once per matrix.
//! [`Packed`] weights have that padding stored (zero bytes are +0 in every dtype), so its
//! kernel reads every chunk alike.

use core::arch::x86_64::{
    __m256, _mm256_add_epi32, _mm256_add_ps, _mm256_and_ps, _mm256_castsi256_ps,
    _mm256_cmpgt_epi32, _mm256_mul_ps, _mm256_permute2f128_ps, _mm256_permutevar8x32_ps,
    _mm256_set1_epi32, _mm256_setr_epi32, _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
};

use namegen_model::Dtype;

use super::{decode, load, load_padded};
use crate::tensor::{LANES, Matrix};
use crate::view::Layer;

/// Rows computed together: 8 sums of 8 lanes, combined into one register.
const ROWS: usize = 8;

/// `out = W x`, bit for bit [`Matrix::matvec`]. Panics if `x` or `out` has the wrong length.
#[target_feature(enable = "avx2,f16c")]
pub(crate) fn matvec(matrix: &Matrix<'_>, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(out.len(), matrix.rows(), "one output per row");
    match matrix.dtype() {
        Dtype::F32 => kernel::<32>(matrix, x, out),
        Dtype::F16 => kernel::<16>(matrix, x, out),
        // q8's codes, unscaled (its scale is 1): the portable code's f32 reading of them.
        Dtype::I8 | Dtype::Q8 => kernel::<8>(matrix, x, out),
    }
}

/// [`matvec`] for the dtype of `CHUNK` bytes per `LANES` values. Closures are avoided: one
/// passed to a library function would not be inlined into it (it carries this function's
/// target features, the library function does not).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn kernel<const CHUNK: usize>(matrix: &Matrix<'_>, x: &[f32], out: &mut [f32]) {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let (n, tail) = (x_chunks.len(), x_tail.len());
    let data = matrix.bytes();
    let row_len = matrix.cols() * CHUNK / LANES;
    if n == 0 || matrix.rows() == 0 || data.len() != matrix.rows() * row_len {
        // No whole chunk to read the tail from, or no row: the portable code.
        return matrix.matvec(x, out);
    }
    let x_last = load_padded(x_tail);
    // The tail is read as the row's last `LANES` values: lane `l` takes the value in lane
    // `l + LANES - tail`, and lanes past the tail get +0 weights, so their sums are unchanged.
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let shift = _mm256_add_epi32(lanes, _mm256_set1_epi32((LANES - tail) as i32));
    let keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(tail as i32), lanes));
    let last_row = matrix.rows() - 1;
    for (block, out) in out.chunks_mut(ROWS).enumerate() {
        let first = block * ROWS;
        // A block past the last row repeats it, and only the real rows are stored.
        let mut rows = [data.as_ptr(); ROWS];
        for (r, row) in rows.iter_mut().enumerate() {
            // SAFETY: the row is at most `last_row`, so it starts inside `data`, which holds
            // `rows * row_len` bytes (checked above).
            *row = unsafe { row.add((first + r).min(last_row) * row_len) };
        }
        let mut sums = [_mm256_setzero_ps(); ROWS];
        for (i, xs) in x_chunks.iter().enumerate() {
            let xs = load(xs);
            for (sum, row) in sums.iter_mut().zip(rows) {
                // SAFETY: chunk `i < n` of a row ends at `(i + 1) * CHUNK <= n * CHUNK`, within
                // the row's `row_len` bytes.
                let w = unsafe { decode::<CHUNK>(row.add(i * CHUNK)) };
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(w, xs));
            }
        }
        if tail > 0 {
            for (sum, row) in sums.iter_mut().zip(rows) {
                // SAFETY: `row_len >= n * CHUNK >= CHUNK` (n > 0), so the row's last `CHUNK`
                // bytes are within it.
                let w = unsafe { decode::<CHUNK>(row.add(row_len - CHUNK)) };
                let w = _mm256_and_ps(_mm256_permutevar8x32_ps(w, shift), keep);
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(w, x_last));
            }
        }
        store::<CHUNK>(matrix, first, sums, out);
    }
}

/// Combines the 8 rows' sums of the block that starts at row `first`, applies the i8 row
/// scales (`CHUNK == LANES`), and stores the block's rows that exist into `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store<const CHUNK: usize>(
    matrix: &Matrix<'_>,
    first: usize,
    sums: [__m256; ROWS],
    out: &mut [f32],
) {
    let mut sums = combine(sums);
    if CHUNK == LANES {
        let mut scales = [0.0f32; ROWS];
        for (r, scale) in scales.iter_mut().enumerate() {
            *scale = matrix.scale((first + r).min(matrix.rows() - 1));
        }
        sums = _mm256_mul_ps(sums, load(&scales));
    }
    if let Some(out) = out.first_chunk_mut::<ROWS>() {
        // SAFETY: `out` is 8 f32, the 32 bytes stored; no alignment is required.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
    } else {
        let mut values = [0.0f32; ROWS];
        // SAFETY: `values` is 8 f32, the 32 bytes stored; no alignment is required.
        unsafe { _mm256_storeu_ps(values.as_mut_ptr(), sums) };
        let rest = out.len();
        out.copy_from_slice(&values[..rest]);
    }
}

/// Row `r`'s `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))` in lane `r`, for the 8 rows' lanes
/// `s0..s7` in `s[r]`: the tree of [`crate::tensor::dot_f32`], level by level.
#[inline]
#[target_feature(enable = "avx2")]
fn combine(s: [__m256; ROWS]) -> __m256 {
    // [s0+s4, s1+s5, s2+s6, s3+s7] of row k, then of row k + 4.
    let p0 = pair_sums(s[0], s[4]);
    let p1 = pair_sums(s[1], s[5]);
    let p2 = pair_sums(s[2], s[6]);
    let p3 = pair_sums(s[3], s[7]);
    // [(s0+s4)+(s2+s6), (s1+s5)+(s3+s7)] of rows 0 and 1, then of 4 and 5; rows 2, 3, 6, 7.
    let low = _mm256_add_ps(
        _mm256_shuffle_ps::<0b01_00_01_00>(p0, p1),
        _mm256_shuffle_ps::<0b11_10_11_10>(p0, p1),
    );
    let high = _mm256_add_ps(
        _mm256_shuffle_ps::<0b01_00_01_00>(p2, p3),
        _mm256_shuffle_ps::<0b11_10_11_10>(p2, p3),
    );
    // Rows 0..3, then 4..7.
    _mm256_add_ps(
        _mm256_shuffle_ps::<0b10_00_10_00>(low, high),
        _mm256_shuffle_ps::<0b11_01_11_01>(low, high),
    )
}

/// The sums of the two halves of `a`, then of `b`.
#[inline]
#[target_feature(enable = "avx2")]
fn pair_sums(a: __m256, b: __m256) -> __m256 {
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x31>(a, b),
    )
}

/// A matrix's stored bytes in the order [`matvec_packed`] reads them: block by block of 8
/// rows, chunk by chunk, the 8 rows' chunks one after another. The kernel then streams one
/// run of memory front to back, from a 64-byte boundary, so no load straddles two cache
/// lines; in the row order, 8 rows are read side by side and rows of 100 f32 start at every
/// 16-byte offset, so a quarter of the loads straddle. Bytes past a row's end and rows past
/// the matrix's end are zero: +0 in every dtype, the padding the exactness argument of the
/// module documentation asks for. A q8 matrix is packed the same way in pieces of
/// [`super::q8::GROUP`] columns rather than `LANES`, the order its kernel reads
/// ([`super::q8::piece`]); zero codes add nothing to its sums.
pub(crate) struct Packed {
    /// The packed bytes start at `start`, the first 64-byte boundary of the allocation.
    bytes: std::vec::Vec<u8>,
    start: usize,
    len: usize,
    rows: usize,
    cols: usize,
    dtype: Dtype,
    /// q8 only (empty otherwise): the per-row integers of the packed q8 kernels.
    #[cfg(feature = "q8")]
    rows_q8: super::q8::Rows,
}

impl Packed {
    /// `layer`'s weights, packed (and a q8 layer's per-row integers).
    pub(crate) fn new(layer: &Layer<'_>) -> Self {
        let matrix = &layer.weight;
        let (rows, cols, dtype) = (matrix.rows(), matrix.cols(), matrix.dtype());
        #[cfg(feature = "q8")]
        let width = if dtype == Dtype::Q8 {
            super::q8::GROUP
        } else {
            LANES
        };
        #[cfg(not(feature = "q8"))]
        let width = LANES;
        let chunk = width * dtype.size();
        let chunks = cols.div_ceil(width);
        let blocks = match dtype {
            #[cfg(feature = "q8")]
            Dtype::Q8 => super::q8::padded_blocks(rows.div_ceil(ROWS)),
            _ => rows.div_ceil(ROWS),
        };
        let len = blocks * chunks * ROWS * chunk;
        let mut bytes = std::vec![0u8; len + 63];
        let start = bytes.as_ptr().align_offset(64).min(63);
        let data = &mut bytes[start..start + len];
        // A q8 matrix's pieces go panel by panel (`super::q8::piece`), its kernels' order.
        let piece = |block: usize, c: usize| {
            #[cfg(feature = "q8")]
            if dtype == Dtype::Q8 {
                return super::q8::piece(block, c, rows.div_ceil(ROWS), chunks);
            }
            block * chunks + c
        };
        for row in 0..rows {
            let (block, r) = (row / ROWS, row % ROWS);
            for (c, piece_bytes) in matrix.row_bytes(row).chunks(chunk).enumerate() {
                let at = (piece(block, c) * ROWS + r) * chunk;
                data[at..at + piece_bytes.len()].copy_from_slice(piece_bytes);
            }
        }
        #[cfg(feature = "q8")]
        let rows_q8 = match dtype {
            Dtype::Q8 => super::q8::Rows::new(layer),
            _ => super::q8::Rows::default(),
        };
        Self {
            bytes,
            start,
            len,
            rows,
            cols,
            dtype,
            #[cfg(feature = "q8")]
            rows_q8,
        }
    }

    /// The rows, columns and dtype of the matrix packed.
    pub(super) fn shape(&self) -> (usize, usize, Dtype) {
        (self.rows, self.cols, self.dtype)
    }

    /// The packed bytes.
    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// q8 only: the per-row integers of the packed q8 kernels.
    #[cfg(feature = "q8")]
    pub(super) fn rows_q8(&self) -> &super::q8::Rows {
        &self.rows_q8
    }
}

impl core::fmt::Debug for Packed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packed")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("dtype", &self.dtype)
            .field("bytes", &self.len)
            .finish()
    }
}

/// [`matvec`] reading the weights from `packed`, [`Packed::new`] of `matrix` (whose scales
/// it uses): the same sums of the same products in the same order, so the same bits. Panics if
/// `packed` has another shape or dtype, or `x` or `out` the wrong length.
#[target_feature(enable = "avx2,f16c")]
pub(crate) fn matvec_packed(matrix: &Matrix<'_>, packed: &Packed, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(out.len(), matrix.rows(), "one output per row");
    let shape = (matrix.rows(), matrix.cols(), matrix.dtype());
    assert_eq!(packed.shape(), shape, "packed from matrix");
    if x.is_empty() {
        // No chunk at all (which no model's config allows): the portable code.
        return matrix.matvec(x, out);
    }
    match matrix.dtype() {
        Dtype::F32 => packed_kernel::<32>(matrix, packed.data(), x, out),
        Dtype::F16 => packed_kernel::<16>(matrix, packed.data(), x, out),
        Dtype::I8 | Dtype::Q8 => packed_kernel::<8>(matrix, packed.data(), x, out),
    }
}

/// [`matvec_packed`] for the dtype of `CHUNK` bytes per `LANES` values.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn packed_kernel<const CHUNK: usize>(matrix: &Matrix<'_>, data: &[u8], x: &[f32], out: &mut [f32]) {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let x_last = load_padded(x_tail);
    let block_len = x.len().div_ceil(LANES) * ROWS * CHUNK;
    for (block, (out, weights)) in out
        .chunks_mut(ROWS)
        .zip(data.chunks_exact(block_len))
        .enumerate()
    {
        let mut sums = [_mm256_setzero_ps(); ROWS];
        for (i, chunk) in weights.chunks_exact(ROWS * CHUNK).enumerate() {
            // The last chunk of a row with a tail is padded with +0, as is its input.
            let xs = match x_chunks.get(i) {
                Some(xs) => load(xs),
                None => x_last,
            };
            for (r, sum) in sums.iter_mut().enumerate() {
                // SAFETY: `chunk` holds `ROWS * CHUNK` bytes, row `r < ROWS` the `CHUNK` at
                // `r * CHUNK`.
                let w = unsafe { decode::<CHUNK>(chunk.as_ptr().add(r * CHUNK)) };
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(w, xs));
            }
        }
        store::<CHUNK>(matrix, block * ROWS, sums, out);
    }
}
