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
    dtype: Dtype,
    data: &'a [u8],
    scales: Vector<'a>,
}

impl<'a> Matrix<'a> {
    /// A view of `data`, which must hold exactly `rows * cols` elements of `dtype`, and of
    /// `scales`, which must hold `rows` f32 for i8 and be empty otherwise. `None` when the
    /// lengths disagree; the loader has checked everything else.
    pub fn new(
        rows: usize,
        cols: usize,
        dtype: Dtype,
        data: &'a [u8],
        scales: Vector<'a>,
    ) -> Option<Self> {
        let expected_scales = if dtype == Dtype::I8 { rows } else { 0 };
        let elements = rows.checked_mul(cols)?;
        (data.len() == elements.checked_mul(dtype.size())? && scales.len() == expected_scales)
            .then_some(Self {
                rows,
                cols,
                dtype,
                data,
                scales,
            })
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
        self.dtype
    }

    /// The raw little-endian bytes of row `row`.
    pub fn row_bytes(&self, row: usize) -> &'a [u8] {
        let width = self.cols * self.dtype.size();
        &self.data[row * width..(row + 1) * width]
    }

    /// The scale of row `row` (1 for f32 and f16).
    pub fn scale(&self, row: usize) -> f32 {
        if self.dtype == Dtype::I8 {
            self.scales.get(row)
        } else {
            1.0
        }
    }

    /// `W[row] . x` in f32, `x` holding [`Matrix::cols`] values, in the summation order of
    /// [`dot_f32`]; for i8 the integer weights are summed first and the row's scale applied
    /// once at the end. Panics if `row` is out of range, like slice indexing.
    pub fn row_dot(&self, row: usize, x: &[f32]) -> f32 {
        let bytes = self.row_bytes(row);
        match self.dtype {
            Dtype::F32 => dot::<4>(bytes, x, f32_le),
            Dtype::F16 => dot::<2>(bytes, x, f16_le),
            Dtype::I8 => dot::<1>(bytes, x, i8_le) * self.scales.get(row),
        }
    }

    /// Writes the values of row `row` into the first [`Matrix::cols`] entries of `out`, as
    /// f32: the weight itself for f32 and f16, `q * scale` for i8.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let scale = self.scale(row);
        self.row_raw_into(row, out);
        if self.dtype == Dtype::I8 {
            out.iter_mut().take(self.cols).for_each(|v| *v *= scale);
        }
    }

    /// Row `row` decoded as stored, without the i8 scale: what [`Matrix::row_dot`] multiplies
    /// `x` by. Lets a batched caller decode a row once and reuse it with [`dot_f32`].
    pub fn row_raw_into(&self, row: usize, out: &mut [f32]) {
        let decode = match self.dtype {
            Dtype::F32 => f32_le,
            Dtype::F16 => f16_le,
            Dtype::I8 => i8_le,
        };
        let values = self.row_bytes(row).chunks_exact(self.dtype.size());
        for (slot, value) in out.iter_mut().zip(values) {
            *slot = decode(value);
        }
    }
}

/// Lanes of the dot product: element `j` is added to partial sum `j % LANES`.
pub const LANES: usize = 8;

/// [`dot_f32`] over stored bytes, decoding each weight with `decode` on the fly.
fn dot<const SIZE: usize>(bytes: &[u8], x: &[f32], decode: fn(&[u8]) -> f32) -> f32 {
    let mut sums = [0.0f32; LANES];
    let full = x.len() / LANES * LANES;
    let (x_body, x_tail) = x.split_at(full);
    let (w_body, w_tail) = bytes.split_at(full * SIZE);
    for (w, x) in w_body
        .chunks_exact(LANES * SIZE)
        .zip(x_body.chunks_exact(LANES))
    {
        for lane in 0..LANES {
            sums[lane] += decode(&w[lane * SIZE..lane * SIZE + SIZE]) * x[lane];
        }
    }
    for (lane, (w, x)) in w_tail.chunks_exact(SIZE).zip(x_tail).enumerate() {
        sums[lane] += decode(w) * x;
    }
    combine(sums)
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

fn combine(s: [f32; LANES]) -> f32 {
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

fn f32_le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn f16_le(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

fn i8_le(b: &[u8]) -> f32 {
    f32::from(b[0] as i8)
}

/// A vector of little-endian f32 values.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vector<'a> {
    data: &'a [u8],
}

impl<'a> Vector<'a> {
    /// A view of `data`; `None` unless its length is a multiple of 4.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        data.len().is_multiple_of(4).then_some(Self { data })
    }

    /// Number of values.
    pub const fn len(&self) -> usize {
        self.data.len() / 4
    }

    /// True when there are no values.
    pub const fn is_empty(&self) -> bool {
        self.data.is_empty()
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
