//! The batched generator's layer on a group of [`GROUP`] contexts: the product
//! [`matmul_group`], bit for bit [`Matrix::matmul_group`], and the bias and `tanh`
//! [`finish_group`], bit for bit the portable loop.
//!
//! Why the product is the same: each of [`crate::tensor::dot_f32`]'s 8 partial sums is a chain
//! of its own, element `j` into sum `j % 8` in increasing `j`. The portable kernel runs the 8
//! chains side by side (8 sums of 16 inputs: every register and more); this one runs them one
//! after another for 4 rows at once, each chain's additions the same operands in the same
//! order, then adds the 8 sums with the same tree and applies the scale last. The bias and
//! `tanh` are those of [`super::activation`] on the group's two registers per row.

use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};

use namegen_model::Dtype;

use super::activation::tanh_lanes;
use crate::tensor::{GROUP, LANES, Matrix, Vector};

/// Rows [`matmul_group`] computes together: 4 rows of 2 registers of sums (16 inputs), the 2
/// registers of one input row and a weight fit the 16 vector registers.
const GROUP_ROWS: usize = 4;

/// `out[r][b] = W[r] . x_b` for the [`GROUP`] inputs in `xt` (`xt[j][b]` is element `j` of
/// input `b`), bit for bit [`Matrix::matmul_group`], from `weights`: the matrix's values
/// decoded as stored ([`Matrix::row_raw_into`] of every row, row after row); `matrix` gives
/// the shape and the i8 scales. Panics if a slice has the wrong length. Why it is the same:
/// see the module documentation.
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

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use namegen_model::{Dtype, Rng};

    use super::{GROUP, finish_group, matmul_group};
    use crate::Kernels;
    use crate::avx::tests::same_bits;
    use crate::tensor::{Matrix, Vector};

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
                Dtype::I8 | Dtype::Q8 => bytes.push((bits % 255) as u8 ^ 0x80),
            }
        }
        bytes
    }

    #[test]
    fn group_kernel_is_the_portable_group_kernel_bit_for_bit() {
        if !Kernels::detect().avx2() {
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
        for dtype in Dtype::FLOAT {
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
                // SAFETY: `Kernels::detect` found AVX2 and F16C above.
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
        if !Kernels::detect().avx2() {
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
            // SAFETY: `Kernels::detect` found AVX2 and F16C above.
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
}
