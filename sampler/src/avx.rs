//! Kernels for x86_64 hosts with AVX2 and F16C, written with intrinsics because the compiler
//! does not find these schedules on its own: the one-name forward pass's matrix-vector product
//! (the same bits as [`crate::Matrix::matvec`], from the weights in place or from a
//! [`Packed`] copy), its bias and `tanh` (the same bits as [`crate::math::tanh`]), the
//! batched generator's product of a group of contexts (the same bits as
//! [`crate::Matrix::matmul_group`]; see [`matmul_group`]) and its bias and `tanh`, and the
//! draw's weights `expf((z - m) / T)` (the same bits as `libm::expf`).
//!
//! # The matrix-vector product
//!
//! Why it is the same: every row keeps the 8 partial sums of [`crate::tensor::dot_f32`] in
//! one register (element `j` into lane `j % 8`, chunk after chunk, a multiply then an add,
//! never fused, `sum + w * x` with the operands in that order), and the combine tree
//! `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))` is the same additions of the same operands in the
//! same order, only for 8 rows at once; the i8 scale multiplies the sum last. Decoding is
//! exact: f16 through F16C's `vcvtph2ps` (the tests compare it with
//! [`crate::tensor::f16_to_f32`] on all 65,536 patterns) and i8 through integer widening.
//!
//! A row's last, partial chunk is read as the row's last 8 values, moved down to the lanes the
//! scalar code adds them to, and the lanes past the row's end get +0 weights and +0 inputs:
//! a partial sum starts at +0 and can never become -0 (an exact cancellation gives +0), so
//! adding +0 leaves every sum as it was. Reading backwards keeps every load inside its row,
//! so the rows are addressed with pointers whose bounds are checked once per matrix.
//! [`Packed`] weights have that padding stored (zero bytes are +0 in every dtype), so its
//! kernel reads every chunk alike.
//!
//! # The activation
//!
//! [`finish`] adds the bias and runs [`crate::math::tanh`]'s sequence of operations on 8
//! lanes, its `if` a blend; the tests compare it with the scalar function on every 61st f32.
//!
//! # The draw's weights
//!
//! [`exp_weights`] runs `libm::expf` (FreeBSD's `e_expf.c`) on 8 lanes at once: the same
//! argument reduction and polynomial, operation for operation, with its branches on the
//! argument's range turned into selects. Its last step, `scalbnf(y, k)`, multiplies by `2^k`,
//! which is exact while the result stays normal; the vector code adds `k` to the exponent
//! instead. That is the same below libm's own threshold `|x| < 87.33655` (`ln 2^126`): there
//! `e^x` is normal, and so is `y 2^k`. A lane past it (an overflow, an underflow, NaN) goes to
//! `libm::expf` itself. The tests compare both on every f32 in the range the draws use
//! (0 down to -104) and on every 61st f32 besides.

use core::arch::x86_64::{
    __m256, __m256i, _CMP_LT_OQ, _mm_loadl_epi64, _mm_loadu_si128, _mm256_add_epi32, _mm256_add_ps,
    _mm256_and_ps, _mm256_and_si256, _mm256_blendv_ps, _mm256_castps_si256, _mm256_castsi256_ps,
    _mm256_cmp_ps, _mm256_cmpgt_epi32, _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps, _mm256_cvtph_ps,
    _mm256_cvttps_epi32, _mm256_div_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps,
    _mm256_movemask_ps, _mm256_mul_ps, _mm256_or_si256, _mm256_permute2f128_ps,
    _mm256_permutevar8x32_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32,
    _mm256_setzero_ps, _mm256_setzero_si256, _mm256_shuffle_ps, _mm256_slli_epi32,
    _mm256_srai_epi32, _mm256_storeu_ps, _mm256_sub_ps,
};

use namegen_model::Dtype;

use crate::tensor::{GROUP, LANES, Matrix, Vector};

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
        Dtype::I8 => kernel::<8>(matrix, x, out),
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

/// A matrix's stored bytes in the order [`matvec_packed`] reads them: block by block of 8
/// rows, chunk by chunk, the 8 rows' chunks one after another. The kernel then streams one
/// run of memory front to back, from a 64-byte boundary, so no load straddles two cache
/// lines; in the row order, 8 rows are read side by side and rows of 100 f32 start at every
/// 16-byte offset, so a quarter of the loads straddle. Bytes past a row's end and rows past
/// the matrix's end are zero: +0 in every dtype, the padding the exactness argument of the
/// module documentation asks for.
pub(crate) struct Packed {
    /// The packed bytes start at `start`, the first 64-byte boundary of the allocation.
    bytes: std::vec::Vec<u8>,
    start: usize,
    len: usize,
    rows: usize,
    cols: usize,
    dtype: Dtype,
}

impl Packed {
    /// `matrix`'s bytes, packed.
    pub(crate) fn new(matrix: &Matrix<'_>) -> Self {
        let (rows, cols, dtype) = (matrix.rows(), matrix.cols(), matrix.dtype());
        let chunk = LANES * dtype.size();
        let chunks = cols.div_ceil(LANES);
        let len = rows.div_ceil(ROWS) * chunks * ROWS * chunk;
        let mut bytes = std::vec![0u8; len + 63];
        let start = bytes.as_ptr().align_offset(64).min(63);
        let data = &mut bytes[start..start + len];
        for row in 0..rows {
            let (block, r) = (row / ROWS, row % ROWS);
            for (c, piece) in matrix.row_bytes(row).chunks(chunk).enumerate() {
                let at = ((block * chunks + c) * ROWS + r) * chunk;
                data[at..at + piece.len()].copy_from_slice(piece);
            }
        }
        Self {
            bytes,
            start,
            len,
            rows,
            cols,
            dtype,
        }
    }

    /// The packed bytes.
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
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
    let shape = (packed.rows, packed.cols, packed.dtype);
    assert_eq!(
        shape,
        (matrix.rows(), matrix.cols(), matrix.dtype()),
        "packed from matrix"
    );
    if x.is_empty() {
        // No chunk at all (which no model's config allows): the portable code.
        return matrix.matvec(x, out);
    }
    match matrix.dtype() {
        Dtype::F32 => packed_kernel::<32>(matrix, packed.data(), x, out),
        Dtype::F16 => packed_kernel::<16>(matrix, packed.data(), x, out),
        Dtype::I8 => packed_kernel::<8>(matrix, packed.data(), x, out),
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

/// Rows [`matmul_group`] computes together: 4 rows of 2 registers of sums (16 inputs), the 2
/// registers of one input row and a weight fit the 16 vector registers.
const GROUP_ROWS: usize = 4;

/// `out[r][b] = W[r] . x_b` for the [`GROUP`] inputs in `xt` (`xt[j][b]` is element `j` of
/// input `b`), bit for bit [`Matrix::matmul_group`], from `weights`: the matrix's values
/// decoded as stored ([`Matrix::row_raw_into`] of every row, row after row); `matrix` gives
/// the shape and the i8 scales. Panics if a slice has the wrong length.
///
/// Why it is the same: each of [`crate::tensor::dot_f32`]'s 8 partial sums is a chain of its
/// own, element `j` into sum `j % 8` in increasing `j`. The portable kernel runs the 8 chains
/// side by side (8 sums of 16 inputs: every register and more); this one runs them one after
/// another for 4 rows at once, each chain's additions the same operands in the same order,
/// then adds the 8 sums with the same tree and applies the scale last.
#[target_feature(enable = "avx2")]
pub(crate) fn matmul_group(
    weights: &[f32],
    matrix: &Matrix<'_>,
    xt: &[[f32; GROUP]],
    out: &mut [[f32; GROUP]],
) {
    let (rows, cols) = (matrix.rows(), matrix.cols());
    assert_eq!(weights.len(), rows * cols, "the matrix's values");
    assert_eq!(xt.len(), cols, "one input row per column");
    assert_eq!(out.len(), rows, "one output row per row");
    let mut blocks = out.chunks_exact_mut(GROUP_ROWS);
    for (block, out) in (&mut blocks).enumerate() {
        group_rows::<GROUP_ROWS>(weights, matrix, block * GROUP_ROWS, xt, out);
    }
    let first = rows - rows % GROUP_ROWS;
    for (r, out) in blocks.into_remainder().chunks_exact_mut(1).enumerate() {
        group_rows::<1>(weights, matrix, first + r, xt, out);
    }
}

/// [`matmul_group`] for the `R` rows from `first` on, into `out` (`R` rows).
#[inline]
#[target_feature(enable = "avx2")]
fn group_rows<const R: usize>(
    weights: &[f32],
    matrix: &Matrix<'_>,
    first: usize,
    xt: &[[f32; GROUP]],
    out: &mut [[f32; GROUP]],
) {
    let cols = xt.len();
    let mut rows: [&[f32]; R] = [&[]; R];
    for (r, row) in rows.iter_mut().enumerate() {
        *row = &weights[(first + r) * cols..][..cols];
    }
    // The lanes in the order of the combine tree `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`, so
    // each finished sum joins the tree at once: per row and half, `pair` holds s0 then
    // s0+s4 (s1, s1+s5), `single` s2 (s3), `left` the first half of the tree and `total`
    // the whole.
    let zero = [[_mm256_setzero_ps(); 2]; R];
    let (mut pair, mut single, mut left, mut total) = (zero, zero, zero, zero);
    for (k, lane) in [0, 4, 2, 6, 1, 5, 3, 7].into_iter().enumerate() {
        let mut sums = zero;
        for (j, x) in xt.iter().enumerate().skip(lane).step_by(LANES) {
            let (low, high) = split(x);
            for (sum, row) in sums.iter_mut().zip(rows) {
                let w = _mm256_set1_ps(row[j]);
                sum[0] = _mm256_add_ps(sum[0], _mm256_mul_ps(w, low));
                sum[1] = _mm256_add_ps(sum[1], _mm256_mul_ps(w, high));
            }
        }
        for r in 0..R {
            for half in 0..2 {
                let s = sums[r][half];
                match k % 4 {
                    0 => pair[r][half] = s,
                    1 => pair[r][half] = _mm256_add_ps(pair[r][half], s),
                    2 => single[r][half] = s,
                    _ => {
                        let quarter = _mm256_add_ps(single[r][half], s);
                        let side = _mm256_add_ps(pair[r][half], quarter);
                        if k == 3 {
                            left[r][half] = side;
                        } else {
                            total[r][half] = _mm256_add_ps(left[r][half], side);
                        }
                    }
                }
            }
        }
    }
    for (r, (out, total)) in out.iter_mut().zip(total).enumerate() {
        let scale = _mm256_set1_ps(matrix.scale(first + r));
        for (half, sum) in total.into_iter().enumerate() {
            let sum = if matrix.dtype() == Dtype::I8 {
                _mm256_mul_ps(sum, scale)
            } else {
                sum
            };
            // SAFETY: `out` is `GROUP` = 16 f32 and `half * LANES + LANES <= 16`; no
            // alignment is required.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(half * LANES), sum) };
        }
    }
}

/// The two registers of one row of a group: inputs 0..8 and 8..16.
#[inline]
#[target_feature(enable = "avx2")]
fn split(x: &[f32; GROUP]) -> (__m256, __m256) {
    let (low, high) = x.split_at(LANES);
    // SAFETY: both halves are 8 f32, the 32 bytes each load reads; no alignment is required.
    unsafe {
        (
            _mm256_loadu_ps(low.as_ptr()),
            _mm256_loadu_ps(high.as_ptr()),
        )
    }
}

/// `x = x + bias`, then [`crate::math::tanh`] if `activate`, for every row of a group (its
/// [`GROUP`] inputs in 2 registers): the same bits as the portable loop.
#[target_feature(enable = "avx2")]
pub(crate) fn finish_group(x: &mut [[f32; GROUP]], bias: &Vector<'_>, activate: bool) {
    assert_eq!(x.len(), bias.len(), "one bias per row");
    for (row, bias) in x.iter_mut().zip(bias.iter()) {
        let (low, high) = split(row);
        let bias = _mm256_set1_ps(bias);
        let (mut low, mut high) = (_mm256_add_ps(low, bias), _mm256_add_ps(high, bias));
        if activate {
            (low, high) = (tanh_lanes(low), tanh_lanes(high));
        }
        let (first, second) = row.split_at_mut(LANES);
        // SAFETY: both halves are 8 f32, the 32 bytes each store writes; no alignment is
        // required.
        unsafe {
            _mm256_storeu_ps(first.as_mut_ptr(), low);
            _mm256_storeu_ps(second.as_mut_ptr(), high);
        }
    }
}

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
fn tanh_lanes(x: __m256) -> __m256 {
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

    use namegen_model::{Dtype, Rng};

    use super::{GROUP, LANES, decode, exp_weights, finish_group, matmul_group, tanh_lanes};
    use crate::tensor::{Matrix, Vector, f16_to_f32};

    /// `exp_weights(z, max, temperature)` against `libm::expf` on every `z` of `bits`, in calls
    /// of `len` values (so both whole chunks and a partial last chunk).
    fn check_exp(bits: impl Iterator<Item = u32>, max: f32, temperature: f32, len: usize) {
        let z: Vec<f32> = bits.map(f32::from_bits).collect();
        let mut got = vec![0.0f32; z.len()];
        for (z, got) in z.chunks(len).zip(got.chunks_mut(len)) {
            // SAFETY: the callers checked that the CPU has AVX2.
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

    /// The same bits, or NaN both (a NaN's payload is not part of either function's result).
    fn same_bits(got: f32, want: f32) -> bool {
        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
    }

    #[test]
    fn tanh_lanes_are_the_portable_tanh_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        // Every 61st bit pattern of both signs, as the portable function's own test.
        let inputs: Vec<u32> = (0..=u32::MAX).step_by(61).collect();
        for bits in inputs.chunks_exact(LANES) {
            let x: [f32; LANES] = core::array::from_fn(|i| f32::from_bits(bits[i]));
            let mut got = [0.0f32; LANES];
            // SAFETY: AVX2 was detected above; `x` and `got` are the 32 bytes read and stored.
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

    #[test]
    fn exp_weights_are_libm_expf_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
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

    /// `count` stored values of `dtype`, drawn by `rng`: weights of every sign and of many
    /// magnitudes, with some zeros of both signs (the sums' start and padding are +0).
    fn stored_values(dtype: Dtype, count: usize, rng: &mut Rng) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..count {
            let bits = rng.next_u32();
            let value = match bits % 16 {
                0 => 0.0,
                1 => -0.0,
                _ => (rng.next_f32() - 0.5) * [1e-3, 1.0, 300.0][bits as usize % 3],
            };
            match dtype {
                Dtype::F32 => bytes.extend(value.to_le_bytes()),
                Dtype::F16 => bytes.extend(half::f16::from_f32(value).to_le_bytes()),
                Dtype::I8 => bytes.push((bits % 255) as u8 ^ 0x80),
            }
        }
        bytes
    }

    #[test]
    fn group_kernel_is_the_portable_group_kernel_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = Rng::new(41);
        // Rows around the 4 computed together, columns around the 8 partial sums, and the
        // default model's layer shapes.
        let shapes = [
            (1, 1),
            (3, 7),
            (4, 8),
            (5, 9),
            (9, 17),
            (27, 100),
            (100, 30),
            (100, 100),
        ];
        for dtype in Dtype::ALL {
            for (rows, cols) in shapes {
                let bytes = stored_values(dtype, rows * cols, &mut rng);
                let scales: Vec<u8> = (0..if dtype == Dtype::I8 { rows } else { 0 })
                    .flat_map(|_| (rng.next_f32() * 0.02 + 1e-4).to_le_bytes())
                    .collect();
                let scales = Vector::new(&scales).unwrap();
                let matrix = Matrix::new(rows, cols, dtype, &bytes, scales).unwrap();
                let mut weights = vec![0.0f32; rows * cols];
                for (r, row) in weights.chunks_exact_mut(cols).enumerate() {
                    matrix.row_raw_into(r, row);
                }
                let xt: Vec<[f32; GROUP]> = (0..cols)
                    .map(|_| core::array::from_fn(|_| rng.next_f32() * 4.0 - 2.0))
                    .collect();
                let mut want = vec![[0.0f32; GROUP]; rows];
                matrix.matmul_group(&xt, &mut want);
                let mut got = vec![[f32::NAN; GROUP]; rows];
                // SAFETY: AVX2 was detected above.
                unsafe { matmul_group(&weights, &matrix, &xt, &mut got) };
                for (r, (got, want)) in got.iter().zip(&want).enumerate() {
                    for (b, (got, want)) in got.iter().zip(want).enumerate() {
                        assert!(
                            same_bits(*got, *want),
                            "{dtype} {rows}x{cols} row {r} input {b}: {got:e}, portable {want:e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn group_finish_is_the_portable_bias_and_tanh_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = Rng::new(43);
        let rows = 37;
        let bias: Vec<u8> = (0..rows)
            .flat_map(|_| (rng.next_f32() - 0.5).to_le_bytes())
            .collect();
        let bias = Vector::new(&bias).unwrap();
        // Sums of every magnitude the activations meet, tiny ones (kept as they are) included.
        let sums: Vec<[f32; GROUP]> = (0..rows)
            .map(|_| {
                core::array::from_fn(|_| {
                    let scale = [1e-5, 0.01, 1.0, 10.0][rng.next_u32() as usize % 4];
                    (rng.next_f32() - 0.5) * scale
                })
            })
            .collect();
        for activate in [false, true] {
            let mut got = sums.clone();
            // SAFETY: AVX2 was detected above.
            unsafe { finish_group(&mut got, &bias, activate) };
            for (r, (got, sums)) in got.iter().zip(&sums).enumerate() {
                for (got, sum) in got.iter().zip(sums) {
                    let value = sum + bias.get(r);
                    let want = if activate {
                        crate::math::tanh(value)
                    } else {
                        value
                    };
                    assert!(same_bits(*got, want), "row {r}: {got:e}, portable {want:e}");
                }
            }
        }
    }

    #[test]
    fn f16c_decodes_every_bit_pattern_as_the_portable_code() {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")) {
            return;
        }
        for first in (0..=u16::MAX).step_by(LANES) {
            let patterns: [u16; LANES] = core::array::from_fn(|i| first + i as u16);
            let mut bytes = [0u8; 16];
            for (chunk, bits) in bytes.chunks_exact_mut(2).zip(patterns) {
                chunk.copy_from_slice(&bits.to_le_bytes());
            }
            let mut got = [0.0f32; LANES];
            // SAFETY: AVX2 and F16C were detected above; `got` is the 32 bytes stored.
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
