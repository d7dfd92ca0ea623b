//! The loader's last check: that no context can drive the forward pass out of f32's range.
//!
//! Finite weights are not enough: weights of 3e38 are finite, yet their products overflow to
//! infinity, a later sum meets the opposite infinity, and the logits come out NaN (every name
//! `a`, every score NaN). So [`ModelView::parse`] bounds, in f64, every value the forward pass
//! computes, over every context at once, and refuses the model when a bound exceeds
//! [`MAX_MAGNITUDE`]:
//! - each embedding value as the forward pass decodes it (for i8 `q * scale` rounded to f32,
//!   which can itself overflow);
//! - each output `j` of each layer, before `tanh`: `sum_i |W[j, i]| * m_i + |b[j]|`, with
//!   `W` decoded (the i8 scale included) and `m_i` the largest magnitude input `i` can take:
//!   for the first layer the largest magnitude of that input's embedding column over all
//!   symbols, for later layers 1 (a `tanh` output; [`crate::math::tanh`] never leaves
//!   `[-1, 1]`). For i8 the kernels sum `q * x` before applying the row's scale, so that
//!   unscaled sum, `sum_i |q[j, i]| * m_i`, is bounded too.
//!
//! Every bound is over all contexts, so it holds whatever the context; it only reads the
//! weights, so an accepted model computes exactly what it computed before.
//!
//! [`ModelView::parse`]: crate::ModelView::parse

use namegen_model::TensorName;

use crate::error::LoadError;
use crate::tensor::Matrix;
use crate::view::{Layer, ModelView};

/// The largest magnitude [`crate::ModelView::parse`] lets any value of the forward pass reach,
/// for any context: a decoded embedding value, a layer's output before `tanh`, a logit. A
/// model whose weights could exceed it is refused ([`crate::LoadError::MayOverflow`]).
///
/// Why 1e37, about `f32::MAX / 34`: the sampler computes `z - max` over the logits, at most
/// twice this in magnitude, then divides by the temperature (an infinite quotient is fine
/// there: `expf` of minus infinity is 0) and takes `expf` and a log-softmax of finite
/// differences. The bound is exact arithmetic; f32 rounds each product and each partial sum,
/// in whatever order a kernel adds them, which can exceed it by about `n * 2^-24` relative
/// (under 0.03 % for the widest layer the format allows, 4,096 inputs), and `tanh` stays within
/// `[-1, 1]`. So every value stays below 1.001e37, every difference of logits below 2.1e37,
/// and the remaining factor of 16 below `f32::MAX` is the safety margin. No trained model comes
/// near it: the shipped ones' bounds stay below 26.
pub const MAX_MAGNITUDE: f64 = 1e37;

/// Embedding columns whose largest magnitudes are kept at once (256 bytes of stack); a wider
/// embedding has them recomputed for each row of the first layer.
const COLUMNS: usize = 64;

/// Refuses a model of which some value of the forward pass may exceed [`MAX_MAGNITUDE`]; see
/// the module documentation. The view's shapes have been checked, so nothing here panics.
pub(crate) fn check(view: &ModelView<'_>) -> Result<(), LoadError> {
    let embedding = view.embedding();
    for row in 0..embedding.rows() {
        for col in 0..embedding.cols() {
            if !within(f64::from(embedding.value(row, col).abs())) {
                let tensor = TensorName::Embedding;
                return Err(LoadError::MayOverflow { tensor, row });
            }
        }
    }
    let mut columns = ColumnMaxima::new(embedding);
    for (index, layer) in view.layers().enumerate() {
        let weight = &layer.weight;
        for row in 0..weight.rows() {
            let sum = if index == 0 {
                columns.weighted_sum(weight, row)
            } else {
                (0..weight.cols())
                    .map(|col| f64::from(weight.raw(row, col).abs()))
                    .sum()
            };
            check_row(index, layer, row, sum)?;
        }
    }
    Ok(())
}

/// Whether a bound is within [`MAX_MAGNITUDE`] (false for NaN and infinities too).
fn within(bound: f64) -> bool {
    bound <= MAX_MAGNITUDE
}

/// Checks output `row` of layer `index`, given `sum = sum_i |W_raw[row, i]| * m_i` over its
/// stored (for i8 unscaled) weights.
fn check_row(index: usize, layer: &Layer<'_>, row: usize, sum: f64) -> Result<(), LoadError> {
    let bias = f64::from(layer.bias.get(row).abs());
    // The i8 kernels add up `q * x` before they scale, so the unscaled sum is a value too;
    // for f32 and f16 the scale is 1 and both bounds are the same.
    let scaled = sum * f64::from(layer.weight.scale(row));
    if within(sum) && within(scaled + bias) {
        return Ok(());
    }
    // Name the bias when it alone is out of range: the weights may be fine.
    let tensor = if within(bias) {
        TensorName::Weight(index)
    } else {
        TensorName::Bias(index)
    };
    Err(LoadError::MayOverflow { tensor, row })
}

/// The largest magnitude of each embedding column over all symbols, `COLUMNS` columns at a
/// time: the bounds of the first layer's inputs. With no allocator, and embeddings up to 4,096
/// wide, a fixed window is kept; when the embedding is no wider than the window (the default
/// model's is 10), it is filled once for all rows.
struct ColumnMaxima<'m, 'a> {
    embedding: &'m Matrix<'a>,
    /// The first column the window holds, once filled.
    first: Option<usize>,
    maxima: [f32; COLUMNS],
}

impl<'m, 'a> ColumnMaxima<'m, 'a> {
    fn new(embedding: &'m Matrix<'a>) -> Self {
        Self {
            embedding,
            first: None,
            maxima: [0.0; COLUMNS],
        }
    }

    /// `sum_i |W_raw[row, i]| * m_i` for the first layer's `weight`, whose input `i` is
    /// column `i % embed_dim` of some symbol's embedding.
    fn weighted_sum(&mut self, weight: &Matrix<'_>, row: usize) -> f64 {
        let dim = self.embedding.cols();
        let blocks = weight.cols() / dim;
        let mut sum = 0.0;
        for first in (0..dim).step_by(COLUMNS) {
            let len = COLUMNS.min(dim - first);
            self.fill(first, len);
            for block in 0..blocks {
                for (offset, &max) in self.maxima[..len].iter().enumerate() {
                    let w = weight.raw(row, block * dim + first + offset);
                    sum += f64::from(w.abs()) * f64::from(max);
                }
            }
        }
        sum
    }

    /// Makes the window hold columns `first..first + len`.
    fn fill(&mut self, first: usize, len: usize) {
        if self.first == Some(first) {
            return;
        }
        let embedding = self.embedding;
        for (offset, max) in self.maxima[..len].iter_mut().enumerate() {
            *max = (0..embedding.rows())
                .map(|symbol| embedding.value(symbol, first + offset).abs())
                .fold(0.0, f32::max);
        }
        self.first = Some(first);
    }
}
