//! The packed copy of a float model's weights that [`super::matvec`] reads, and its layout.
//!
//! Each layer's rows are taken [`ROWS`] at a time; a block holds its rows' values chunk by
//! chunk, [`LANES`] values of each row in turn, so a block's 8 loads per chunk sit at constant
//! offsets from one pointer that moves on by one chunk (128 bytes). Every value is decoded to
//! f32 once, here, exactly (f16 widened, i8 and q8 as the integers they are, the i8 scale left
//! for the sum), so the kernel reads every dtype alike. Columns past the row's end and rows
//! past the matrix's end are +0: they meet +0 inputs, and a partial sum plus +0 is itself
//! (the parent module says why), and the sums of missing rows are never stored.

use namegen_model::config::MAX_HIDDEN_LAYERS;

use crate::tensor::{LANES, Matrix};

/// Rows interleaved in a block: 4 rows of two 4-lane sums fill 8 of the 16 vector registers
/// an x86_64 engine has, leaving room for the inputs and the loaded weights.
pub(crate) const ROWS: usize = 4;

/// f32 values in one block's chunk: [`LANES`] values of each of its [`ROWS`] rows.
pub(super) const CHUNK_VALUES: usize = ROWS * LANES;

/// The packed copies of a model's layers, in layer order, in a caller's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed<'a> {
    layers: [&'a [f32]; MAX_HIDDEN_LAYERS + 1],
}

impl<'a> Packed<'a> {
    /// Packs `matrices` (a model's layers' weights, at most `MAX_HIDDEN_LAYERS + 1`) into the
    /// start of `buffer`, which must hold their [`len`]s together (panics otherwise).
    pub(crate) fn new<'m>(
        matrices: impl Iterator<Item = &'m Matrix<'m>>,
        mut buffer: &'a mut [f32],
    ) -> Self {
        let mut layers: [&'a [f32]; MAX_HIDDEN_LAYERS + 1] = Default::default();
        for (slot, matrix) in layers.iter_mut().zip(matrices) {
            let (copy, rest) = buffer.split_at_mut(len(matrix));
            pack(matrix, copy);
            *slot = copy;
            buffer = rest;
        }
        Self { layers }
    }

    /// Layer `index`'s packed weights.
    pub(crate) fn layer(&self, index: usize) -> &'a [f32] {
        self.layers[index]
    }
}

/// f32 values of `matrix`'s packed copy: its rows rounded up to [`ROWS`], its columns to
/// [`LANES`].
pub(crate) fn len(matrix: &Matrix<'_>) -> usize {
    matrix.rows().div_ceil(ROWS) * ROWS * matrix.cols().div_ceil(LANES) * LANES
}

/// Writes `matrix`'s packed copy into `out`, [`len`] values.
fn pack(matrix: &Matrix<'_>, out: &mut [f32]) {
    let chunks = matrix.cols().div_ceil(LANES);
    for (k, slot) in out.iter_mut().enumerate() {
        let (lane, chunk) = (k % LANES, k / CHUNK_VALUES);
        let row = chunk / chunks * ROWS + k / LANES % ROWS;
        let col = chunk % chunks * LANES + lane;
        *slot = if row < matrix.rows() && col < matrix.cols() {
            matrix.raw(row, col)
        } else {
            0.0
        };
    }
}
