//! Folding a BatchNorm (eval mode, running statistics) into the Linear layer before it.
//!
//! For each output row `r`: `s = gamma[r] / sqrt(running_var[r] + eps)`,
//! `W'[r] = s * W[r]`, `b'[r] = beta[r] - s * running_mean[r]`, so that
//! `W' x + b' = gamma * (W x - mean) / sqrt(var + eps) + beta` for every `x`.
//! All arithmetic is in f64; rounding to the stored dtype happens later, once.

use core::fmt;

/// One BatchNorm's parameters and running statistics, one value per output row.
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<'a> {
    /// Scale (PyTorch's `weight`).
    pub gamma: &'a [f64],
    /// Shift (PyTorch's `bias`).
    pub beta: &'a [f64],
    /// Running mean of the Linear layer's outputs.
    pub running_mean: &'a [f64],
    /// Running variance of the Linear layer's outputs.
    pub running_var: &'a [f64],
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl BatchNorm<'_> {
    /// The affine map the BatchNorm applies to row `row` in eval mode: `(scale, shift)` with
    /// `bn(y) = scale * y + shift`.
    pub fn affine(&self, row: usize) -> Result<(f64, f64), FoldError> {
        let values = [
            self.gamma[row],
            self.beta[row],
            self.running_mean[row],
            self.running_var[row],
        ];
        if !values.iter().all(|v| v.is_finite()) || !self.eps.is_finite() {
            return Err(FoldError::NonFinite { row });
        }
        let variance = self.running_var[row] + self.eps;
        if self.running_var[row] < 0.0 || variance <= 0.0 {
            return Err(FoldError::NegativeVariance { row });
        }
        let scale = self.gamma[row] / libm::sqrt(variance);
        let shift = self.beta[row] - scale * self.running_mean[row];
        if !scale.is_finite() || !shift.is_finite() {
            return Err(FoldError::NonFinite { row });
        }
        Ok((scale, shift))
    }

    fn rows(&self) -> usize {
        self.gamma.len()
    }
}

/// Why a BatchNorm cannot be folded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FoldError {
    /// A parameter, statistic or result of this row is NaN or infinite.
    NonFinite {
        /// The output row.
        row: usize,
    },
    /// The running variance of this row is negative, or variance plus eps is not positive.
    NegativeVariance {
        /// The output row.
        row: usize,
    },
    /// The slices do not have the lengths `rows x inputs` and `rows`.
    Shape,
}

impl fmt::Display for FoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonFinite { row } => write!(f, "row {row}: a value is NaN or infinite"),
            Self::NegativeVariance { row } => write!(
                f,
                "row {row}: running variance is negative (or variance + eps is not positive)"
            ),
            Self::Shape => write!(f, "weight, BatchNorm and output sizes do not agree"),
        }
    }
}

impl core::error::Error for FoldError {}

/// Folds `bn` into the `[rows, inputs]` row-major `weight`, writing the folded weight and
/// bias. Every output is finite when this returns `Ok`.
pub fn fold(
    weight: &[f64],
    bn: &BatchNorm<'_>,
    folded_weight: &mut [f64],
    folded_bias: &mut [f64],
) -> Result<(), FoldError> {
    let rows = bn.rows();
    let lengths_agree = [bn.beta.len(), bn.running_mean.len(), bn.running_var.len()]
        .iter()
        .all(|&n| n == rows)
        && rows > 0
        && weight.len().is_multiple_of(rows)
        && folded_weight.len() == weight.len()
        && folded_bias.len() == rows;
    if !lengths_agree {
        return Err(FoldError::Shape);
    }
    let inputs = weight.len() / rows;
    let rows_in = weight.chunks_exact(inputs);
    let rows_out = folded_weight.chunks_exact_mut(inputs);
    for (row, (w, w_out)) in rows_in.zip(rows_out).enumerate() {
        let (scale, shift) = bn.affine(row)?;
        for (out, &value) in w_out.iter_mut().zip(w) {
            *out = scale * value;
            if !out.is_finite() {
                return Err(FoldError::NonFinite { row });
            }
        }
        folded_bias[row] = shift;
    }
    Ok(())
}
