//! Read-only views of tensors that stay where the model bytes are (flash on a device).
//!
//! Values are decoded little-endian element by element, so the bytes may sit at any
//! alignment; nothing is copied into RAM.

use namegen_model::Dtype;

/// A `[rows, cols]` row-major matrix of `dtype` values, with per-row f32 scales for i8.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    rows: usize,
    cols: usize,
    kernel: Kernel,
    data: &'a [u8],
    /// i8's row scales; only i8 has any, so a build without its kernel keeps no field (a
    /// view's ten matrices are 80 bytes smaller on a 32-bit device).
    #[cfg(feature = "i8")]
    scales: Vector<'a>,
}

/// The dtypes whose kernels this build has (cargo features `f32`, `f16`, `i8`, `q8`): a
/// firmware that embeds one model links only that model's kernel. With one feature on, this enum has
/// one variant and every `match` on it compiles to straight-line code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    #[cfg(feature = "f32")]
    F32,
    #[cfg(feature = "f16")]
    F16,
    #[cfg(feature = "i8")]
    I8,
    /// q8's integer codes; its layers run in `crate::q8`, and the float kernels read them as
    /// the integers they are, unscaled.
    #[cfg(feature = "q8")]
    Q8,
}

impl Kernel {
    const fn of(dtype: Dtype) -> Option<Self> {
        match dtype {
            #[cfg(feature = "f32")]
            Dtype::F32 => Some(Self::F32),
            #[cfg(feature = "f16")]
            Dtype::F16 => Some(Self::F16),
            #[cfg(feature = "i8")]
            Dtype::I8 => Some(Self::I8),
            #[cfg(feature = "q8")]
            Dtype::Q8 => Some(Self::Q8),
            #[allow(unreachable_patterns, reason = "reached when a dtype's feature is off")]
            _ => None,
        }
    }

    const fn dtype(self) -> Dtype {
        match self {
            #[cfg(feature = "f32")]
            Self::F32 => Dtype::F32,
            #[cfg(feature = "f16")]
            Self::F16 => Dtype::F16,
            #[cfg(feature = "i8")]
            Self::I8 => Dtype::I8,
            #[cfg(feature = "q8")]
            Self::Q8 => Dtype::Q8,
        }
    }
}

impl<'a> Matrix<'a> {
    /// A view of `data`, which must hold exactly `rows * cols` elements of `dtype`, and of
    /// `scales`, which must hold `rows` f32 for i8 and be empty otherwise. `None` when the
    /// lengths disagree or the dtype's kernel is not built ([`Matrix::is_built`]); the loader
    /// has checked everything else.
    pub const fn new(
        rows: usize,
        cols: usize,
        dtype: Dtype,
        data: &'a [u8],
        scales: Vector<'a>,
    ) -> Option<Self> {
        let Some(kernel) = Kernel::of(dtype) else {
            return None;
        };
        let expected_scales = if matches!(dtype, Dtype::I8) { rows } else { 0 };
        let Some(elements) = rows.checked_mul(cols) else {
            return None;
        };
        let Some(bytes) = elements.checked_mul(dtype.size()) else {
            return None;
        };
        if data.len() != bytes || scales.len() != expected_scales {
            return None;
        }
        Some(Self {
            rows,
            cols,
            kernel,
            data,
            #[cfg(feature = "i8")]
            scales,
        })
    }

    /// Whether this build has the kernel for `dtype`: the cargo feature of the same name
    /// (`f32`, `f16`, `i8`, `q8`; all four by default).
    pub const fn is_built(dtype: Dtype) -> bool {
        Kernel::of(dtype).is_some()
    }

    /// Number of rows (outputs of a Linear layer, symbols of an embedding).
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs of a Linear layer, embedding width).
    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// How the values are stored.
    pub const fn dtype(&self) -> Dtype {
        self.kernel.dtype()
    }

    /// The stored values, in place: `rows * cols` little-endian elements of the dtype.
    pub const fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The row scales: `rows` values for i8, none otherwise.
    pub const fn scales(&self) -> Vector<'a> {
        #[cfg(feature = "i8")]
        return self.scales;
        #[cfg(not(feature = "i8"))]
        Vector::EMPTY
    }

    /// The raw little-endian bytes of row `row`.
    pub fn row_bytes(&self, row: usize) -> &'a [u8] {
        let width = self.cols * self.dtype().size();
        &self.data[row * width..(row + 1) * width]
    }

    /// The scale of row `row` (1 for f32 and f16).
    pub fn scale(&self, row: usize) -> f32 {
        if self.dtype() == Dtype::I8 {
            self.scales().get(row)
        } else {
            1.0
        }
    }

    /// `W[row] . x` in f32, `x` holding [`Matrix::cols`] values, in the summation order of
    /// [`dot_f32`]; for i8 the integer weights times `x` are summed first and the row's scale
    /// applied once at the end. Panics if `row` is out of range, like slice indexing.
    pub fn row_dot(&self, row: usize, x: &[f32]) -> f32 {
        let mut out = [0.0];
        self.rows_dot(row, x, &mut out);
        out[0]
    }

    /// `out[r] = W[r] . x` for every row `r`: the same values as [`Matrix::row_dot`] row by
    /// row, several rows at a time so that their independent sums overlap in the pipeline.
    /// `x` holds [`Matrix::cols`] values, `out` [`Matrix::rows`]; panics otherwise.
    #[inline(always)]
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        self.rows_dot(0, x, out);
    }

    /// [`Matrix::matvec`]'s values one weight at a time, in its order and roundings: the same
    /// bits in the fewest bytes of code, for a build whose fast kernels read a packed copy of
    /// the weights and may meet a view without one (WASM with `simd128`, whose size budget the
    /// portable kernels would break). Panics if `x` or `out` has the wrong length.
    #[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(crate) fn matvec_compact(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.cols, "one input per column");
        assert_eq!(out.len(), self.rows, "one output per row");
        for (row, out) in out.iter_mut().enumerate() {
            let mut sums = [0.0f32; LANES];
            for (col, &x) in x.iter().enumerate() {
                sums[col % LANES] += self.raw(row, col) * x;
            }
            let sum = combine(sums);
            *out = if self.dtype() == Dtype::I8 {
                sum * self.scale(row)
            } else {
                sum
            };
        }
    }

    /// The products of [`GROUP`] inputs at once, stored transposed: `xt[j][b]` is element
    /// `j` of input `b` (`xt` holds [`Matrix::cols`] entries), and `out[r][b]` becomes
    /// `W[r] . x_b` for every row `r` (`out` holds [`Matrix::rows`] entries): bit for bit what
    /// [`Matrix::matvec`] gives for each input alone. Each weight is decoded once for all
    /// inputs, and the vector registers run across the inputs, so every lane of
    /// [`dot_f32`]'s order (element `j` into partial sum `j % 8`, in increasing `j`, the tree
    /// at the end) is one register of `GROUP` sums: no tail or horizontal step per input.
    /// Panics if a slice has the wrong length.
    #[cfg(feature = "alloc")]
    #[inline(always)]
    pub(crate) fn matmul_group(&self, xt: &[[f32; GROUP]], out: &mut [[f32; GROUP]]) {
        assert_eq!(xt.len(), self.cols, "one input row per column");
        assert_eq!(out.len(), self.rows, "one output row per row");
        match self.kernel {
            #[cfg(feature = "f32")]
            Kernel::F32 => self.group_kernel::<F32Le, 32>(xt, out),
            #[cfg(feature = "f16")]
            Kernel::F16 => self.group_kernel::<F16Le, 16>(xt, out),
            #[cfg(feature = "i8")]
            Kernel::I8 => self.group_kernel::<I8<true>, 8>(xt, out),
            #[cfg(feature = "q8")]
            Kernel::Q8 => self.group_kernel::<I8<false>, 8>(xt, out),
        }
    }

    #[cfg(feature = "alloc")]
    #[inline(always)]
    fn group_kernel<D: Decode<CHUNK>, const CHUNK: usize>(
        &self,
        xt: &[[f32; GROUP]],
        out: &mut [[f32; GROUP]],
    ) {
        let (x_chunks, x_tail) = xt.as_chunks::<LANES>();
        let row_len = self.cols * D::SIZE;
        for (r, slot) in out.iter_mut().enumerate() {
            let row = &self.data[r * row_len..][..row_len];
            let (w_chunks, w_tail) = row.as_chunks::<CHUNK>();
            let mut sums = [[0.0f32; GROUP]; LANES];
            for (w, xs) in w_chunks.iter().zip(x_chunks) {
                let w = D::lanes(w);
                for lane in 0..LANES {
                    let (sum, x) = (&mut sums[lane], &xs[lane]);
                    *sum = core::array::from_fn(|b| sum[b] + w[lane] * x[b]);
                }
            }
            for ((sum, w), x) in sums
                .iter_mut()
                .zip(w_tail.chunks_exact(D::SIZE))
                .zip(x_tail)
            {
                let w = D::one(w);
                *sum = core::array::from_fn(|b| sum[b] + w * x[b]);
            }
            let scale = self.scale(r);
            *slot = core::array::from_fn(|b| {
                let sum = combine(core::array::from_fn(|lane| sums[lane][b]));
                if D::SCALED { sum * scale } else { sum }
            });
        }
    }

    /// Rows `first..first + out.len()` dotted with `x`, each in the order of [`dot_f32`],
    /// scaled for i8.
    #[inline(always)]
    fn rows_dot(&self, first: usize, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.cols, "one input per column");
        assert!(first + out.len() <= self.rows, "rows past the end");
        match self.kernel {
            #[cfg(feature = "f32")]
            Kernel::F32 => self.rows_kernel::<F32Le, 32>(first, x, out),
            #[cfg(feature = "f16")]
            Kernel::F16 => self.rows_kernel::<F16Le, 16>(first, x, out),
            #[cfg(feature = "i8")]
            Kernel::I8 => self.rows_kernel::<I8<true>, 8>(first, x, out),
            #[cfg(feature = "q8")]
            Kernel::Q8 => self.rows_kernel::<I8<false>, 8>(first, x, out),
        }
    }

    /// [`ROWS`] rows at a time while they last, then one at a time.
    #[inline(always)]
    fn rows_kernel<D: Decode<CHUNK>, const CHUNK: usize>(
        &self,
        first: usize,
        x: &[f32],
        out: &mut [f32],
    ) {
        let row_len = self.cols * D::SIZE;
        let row = |r: usize| &self.data[(first + r) * row_len..][..row_len];
        let scale = |r: usize, sum: f32| {
            if D::SCALED {
                sum * self.scales().get(first + r)
            } else {
                sum
            }
        };
        let mut blocks = out.chunks_exact_mut(ROWS);
        let mut r = 0;
        for block in &mut blocks {
            let sums = dot_rows::<D, CHUNK, ROWS>(core::array::from_fn(|i| row(r + i)), x);
            for (i, (slot, sum)) in block.iter_mut().zip(sums).enumerate() {
                *slot = scale(r + i, sum);
            }
            r += ROWS;
        }
        for slot in blocks.into_remainder() {
            *slot = scale(r, dot_rows::<D, CHUNK, 1>([row(r)], x)[0]);
            r += 1;
        }
    }

    /// Writes the values of row `row` into the first [`Matrix::cols`] entries of `out`, as
    /// f32: the weight itself for f32 and f16, `q * scale` for i8.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let scale = self.scale(row);
        self.row_raw_into(row, out);
        if self.dtype() == Dtype::I8 {
            out.iter_mut().take(self.cols).for_each(|v| *v *= scale);
        }
    }

    /// Row `row` decoded as stored, without the i8 scale: what [`Matrix::row_dot`] multiplies
    /// `x` by. Lets a batched caller decode a row once and reuse it with [`dot_f32`].
    #[inline(always)]
    pub fn row_raw_into(&self, row: usize, out: &mut [f32]) {
        let bytes = self.row_bytes(row);
        let out = out.iter_mut().take(self.cols);
        match self.kernel {
            #[cfg(feature = "f32")]
            Kernel::F32 => decode_into::<F32Le, 32>(bytes, out),
            #[cfg(feature = "f16")]
            Kernel::F16 => decode_into::<F16Le, 16>(bytes, out),
            #[cfg(feature = "i8")]
            Kernel::I8 => decode_into::<I8<true>, 8>(bytes, out),
            #[cfg(feature = "q8")]
            Kernel::Q8 => decode_into::<I8<false>, 8>(bytes, out),
        }
    }

    /// Value `col` of row `row` as stored, without the i8 scale: the number the kernels
    /// multiply by, decoded by the same function. Panics out of range, like slice indexing.
    pub(crate) fn raw(&self, row: usize, col: usize) -> f32 {
        assert!(col < self.cols, "column past the end");
        let size = self.dtype().size();
        let bytes = &self.row_bytes(row)[col * size..][..size];
        match self.kernel {
            #[cfg(feature = "f32")]
            Kernel::F32 => F32Le::one(bytes),
            #[cfg(feature = "f16")]
            Kernel::F16 => F16Le::one(bytes),
            #[cfg(feature = "i8")]
            Kernel::I8 => I8::<true>::one(bytes),
            #[cfg(feature = "q8")]
            Kernel::Q8 => I8::<false>::one(bytes),
        }
    }

    /// Value `col` of row `row` as [`Matrix::row_into`] writes it: the same f32 bits,
    /// `q * scale` rounded to f32 for i8 (which may overflow to infinity).
    pub(crate) fn value(&self, row: usize, col: usize) -> f32 {
        let raw = self.raw(row, col);
        if self.dtype() == Dtype::I8 {
            raw * self.scale(row)
        } else {
            raw
        }
    }
}

/// Inputs [`Matrix::matmul_group`] multiplies at once: two 8-wide AVX2 registers of f32.
#[cfg(feature = "alloc")]
pub(crate) const GROUP: usize = 16;

/// Rows the matrix-vector kernel computes together. Four rows of eight lanes are enough
/// independent additions to keep the adders busy, and few enough to stay in registers.
pub(crate) const ROWS: usize = 4;

/// Lanes of the dot product: element `j` is added to partial sum `j % LANES`.
pub(crate) const LANES: usize = 8;

/// A stored element type: how `LANES` consecutive values (`CHUNK` bytes) are decoded.
/// Every decoding is exact, so the decoded values, and all that follows, are the same bits
/// on every target.
trait Decode<const CHUNK: usize> {
    /// Bytes per value.
    const SIZE: usize;
    /// Whether the row's scale multiplies the sum (i8).
    const SCALED: bool;
    /// The `LANES` values stored in `bytes`.
    fn lanes(bytes: &[u8; CHUNK]) -> [f32; LANES];
    /// The one value stored in `bytes` (exactly `SIZE` of them).
    fn one(bytes: &[u8]) -> f32;
}

/// Little-endian IEEE binary32.
#[cfg(feature = "f32")]
struct F32Le;

#[cfg(feature = "f32")]
impl Decode<32> for F32Le {
    const SIZE: usize = 4;
    const SCALED: bool = false;

    #[inline(always)]
    fn lanes(bytes: &[u8; 32]) -> [f32; LANES] {
        core::array::from_fn(|i| {
            f32::from_le_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        })
    }

    #[inline(always)]
    fn one(bytes: &[u8]) -> f32 {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// Little-endian IEEE binary16, widened exactly with [`f16_to_f32`].
#[cfg(feature = "f16")]
struct F16Le;

#[cfg(feature = "f16")]
impl Decode<16> for F16Le {
    const SIZE: usize = 2;
    const SCALED: bool = false;

    #[inline(always)]
    fn lanes(bytes: &[u8; 16]) -> [f32; LANES] {
        core::array::from_fn(|i| f16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])))
    }

    #[inline(always)]
    fn one(bytes: &[u8]) -> f32 {
        f16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}

/// Signed bytes, the quantised integers themselves: for i8 (`SCALED`) the row scale comes
/// after the sum; q8's codes have no f32 scale.
#[cfg(any(feature = "i8", feature = "q8"))]
struct I8<const SCALED: bool>;

#[cfg(any(feature = "i8", feature = "q8"))]
impl<const SCALED_: bool> Decode<8> for I8<SCALED_> {
    const SIZE: usize = 1;
    const SCALED: bool = SCALED_;

    #[inline(always)]
    fn lanes(bytes: &[u8; 8]) -> [f32; LANES] {
        core::array::from_fn(|i| f32::from(bytes[i] as i8))
    }

    #[inline(always)]
    fn one(bytes: &[u8]) -> f32 {
        f32::from(bytes[0] as i8)
    }
}

/// 2^112: an f16's exponent and mantissa bits shifted into an f32's places make an f32
/// exactly this much smaller than the f16 (see [`f16_to_f32`]).
pub(crate) const TWO_POW_112: f32 = 5_192_296_858_534_827_628_530_496_329_220_096.0;

/// IEEE binary16 bits to the f32 of the same value, exactly (every f16 is an f32), in a few
/// branch-free operations so that it vectorises: the f16's exponent and mantissa bits,
/// shifted into an f32's places, are an f32 (normal or subnormal) exactly 2^112 times smaller
/// than the f16, so one multiplication by 2^112 (a power of two, hence exact, and the result
/// is normal) gives the value; infinities and NaNs (whose exponent the shift cannot re-bias)
/// are selected separately, NaNs coming out quiet with their payload as `half` does. The
/// tests compare all 65,536 bit patterns with `half::f16::to_f32`. Written out because `half`
/// converts in software, branch by branch, where a target lacks F16C.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let magnitude = u32::from(bits & 0x7fff);
    let finite = (f32::from_bits(magnitude << 13) * TWO_POW_112).to_bits();
    let quiet = if magnitude > 0x7c00 { 0x0040_0000 } else { 0 };
    let special = (magnitude << 13) | 0x7f80_0000 | quiet;
    let value = if magnitude >= 0x7c00 { special } else { finite };
    f32::from_bits(value | sign)
}

/// Decodes `bytes` value by value into `out`.
#[inline(always)]
fn decode_into<'o, D: Decode<CHUNK>, const CHUNK: usize>(
    bytes: &[u8],
    out: impl Iterator<Item = &'o mut f32>,
) {
    for (slot, value) in out.zip(bytes.chunks_exact(D::SIZE)) {
        *slot = D::one(value);
    }
}

/// `R` rows of stored values dotted with `x`, each in the order of [`dot_f32`], unscaled.
/// Written so that the compiler vectorises along the lanes of each row (one multiply and one
/// add per lane, in order), which computes exactly what the scalar loop does, with the
/// bounds checks hoisted out of the loop.
#[inline(always)]
fn dot_rows<D: Decode<CHUNK>, const CHUNK: usize, const R: usize>(
    rows: [&[u8]; R],
    x: &[f32],
) -> [f32; R] {
    let mut sums = [[0.0f32; LANES]; R];
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let n = x_chunks.len();
    let w_chunks = rows.map(|row| &row.as_chunks::<CHUNK>().0[..n]);
    for (i, xs) in x_chunks.iter().enumerate() {
        for (sums, w_chunks) in sums.iter_mut().zip(&w_chunks) {
            let w = D::lanes(&w_chunks[i]);
            *sums = core::array::from_fn(|lane| sums[lane] + w[lane] * xs[lane]);
        }
    }
    for (sums, row) in sums.iter_mut().zip(rows) {
        let weights = row[n * CHUNK..].chunks_exact(D::SIZE);
        for ((sum, w), &xv) in sums.iter_mut().zip(weights).zip(x_tail) {
            *sum += D::one(w) * xv;
        }
    }
    sums.map(combine)
}

/// The dot product every target computes, in this exact order so that x86_64, WASM and
/// Cortex-M produce the same bits: element `j` goes to partial sum `j % 8` (in increasing
/// `j`), then the partial sums are added as `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`.
/// No fused multiply-add (Rust never contracts `a * b + c`). The fixed lanes also let the
/// compiler vectorise it without reassociating anything.
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let full = x.len() / LANES * LANES;
    for (w, x) in w[..full]
        .chunks_exact(LANES)
        .zip(x[..full].chunks_exact(LANES))
    {
        for lane in 0..LANES {
            sums[lane] += w[lane] * x[lane];
        }
    }
    for (lane, (w, x)) in w[full..x.len()].iter().zip(&x[full..]).enumerate() {
        sums[lane] += w * x;
    }
    combine(sums)
}

/// The tree in which [`dot_f32`] adds its 8 partial sums.
#[inline(always)]
fn combine(s: [f32; LANES]) -> f32 {
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

/// A vector of little-endian f32 values.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vector<'a> {
    data: &'a [u8],
}

impl<'a> Vector<'a> {
    /// No values: the bias of a q8 layer, the scales of a matrix that is not i8.
    pub(crate) const EMPTY: Self = Self { data: &[] };

    /// A view of `data`; `None` unless its length is a multiple of 4.
    pub const fn new(data: &'a [u8]) -> Option<Self> {
        if data.len().is_multiple_of(4) {
            Some(Self { data })
        } else {
            None
        }
    }

    /// Number of values.
    pub const fn len(&self) -> usize {
        self.data.len() / 4
    }

    /// True when there are no values.
    pub const fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values' bytes, in place.
    pub const fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Value `index`. Panics past the end, like slice indexing.
    pub fn get(&self, index: usize) -> f32 {
        let bytes = &self.data[index * 4..index * 4 + 4];
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use namegen_model::{Dtype, Rng};

    use super::{Matrix, Vector};

    /// `matvec_compact` against `matvec`, bit for bit, on every dtype and on shapes with and
    /// without a partial last chunk, with weights and inputs of every sign and size.
    #[test]
    fn compact_products_are_matvecs_bit_for_bit() {
        let mut rng = Rng::new(7);
        for (rows, cols) in [(1, 1), (5, 8), (7, 13), (27, 100), (100, 30)] {
            let x: Vec<f32> = (0..cols).map(|_| rng.normal() as f32 * 3.0).collect();
            for dtype in [Dtype::F32, Dtype::F16, Dtype::I8, Dtype::Q8] {
                let values = rows * cols;
                let data: Vec<u8> = match dtype {
                    Dtype::F32 => (0..values)
                        .flat_map(|_| (rng.normal() as f32).to_le_bytes())
                        .collect(),
                    Dtype::F16 => (0..values)
                        .flat_map(|_| half::f16::from_f64(rng.normal()).to_le_bytes())
                        .collect(),
                    _ => (0..values)
                        .map(|_| (rng.below(255) as i32 - 127) as u8)
                        .collect(),
                };
                let scales: Vec<u8> = (0..rows)
                    .flat_map(|_| (rng.next_f32() / 64.0 + 1e-3).to_le_bytes())
                    .collect();
                let scales = if dtype == Dtype::I8 { &scales[..] } else { &[] };
                let matrix = Matrix::new(rows, cols, dtype, &data, Vector::new(scales).unwrap())
                    .expect("consistent lengths");
                let (mut want, mut got) = (std::vec![0.0; rows], std::vec![0.0; rows]);
                matrix.matvec(&x, &mut want);
                matrix.matvec_compact(&x, &mut got);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{dtype} {rows}x{cols}");
            }
        }
    }
}
