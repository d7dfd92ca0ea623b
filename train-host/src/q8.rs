//! Calibrating and quantising a folded model to the integer dtype q8 (`model/FORMAT.md`, "The
//! q8 dtype", and how the exporter calibrates it there).
//!
//! The recipe is fixed and deterministic, from the f64-folded weights alone (no data):
//!
//! - the embedding: one scale for the whole table, `s_e = max |E| / 127`, codes
//!   `round(E / s_e)`; `s_e` is folded into layer 0's multipliers (not stored);
//! - every Linear layer: one scale per row, `s_w[r] = max_j |W'[r, j]| / 127` (1 for an
//!   all-zero row), codes `round(W'[r, j] / s_w[r])`, the bias in accumulator units
//!   `round(b'[r] / (s_w[r] s_x))` with `s_x` the input's scale (`s_e` for layer 0, `1/127`
//!   after a `tanh`), and the row's real multiplier `s_w[r] s_x / s_out` stored by TensorFlow
//!   Lite's `QuantizeMultiplier` at 16 bits ([`namegen_model::q8::quantize_multiplier`]);
//! - the output scale `s_out`: `R / 127` for a hidden layer, whose pre-activation codes cover
//!   `[-R, R]` with `R` = [`TANH_RANGE`], and `2^-16` for the logits (Q16);
//! - the `tanh` table: `round(127 tanh(k R / 127))` ([`namegen_model::q8::tanh_table`]).
//!
//! Every rounding is to nearest with ties away from zero, in f64. It is the recipe of the
//! numpy reference `sampler/tests/data/make_q8_fixture.py`, which gives the same bytes from
//! the same weights (tested).

use namegen_model::TensorName;
use namegen_model::format::{quantize_symmetric, symmetric_scale};
use namegen_model::q8::{TANH_TABLE_LEN, bias_shift, quantize_multiplier, tanh_table};

use crate::export::FoldedWeights;

/// `R`: the hidden layers' pre-activation codes are int8 of scale `R / 127`, covering
/// `[-R, R]`. `tanh` rounds to `+-127/127` (the largest output code) from 3.114 on, so a
/// range much beyond that spends codes on inputs that all give the same output, and one
/// much below it clips pre-activations whose `tanh` still differs. Among the ranges around
/// that point, the prototype's search picked 3.25: the smallest mean KL(float || q8) over
/// the training set's contexts for the default model. It is a constant, not searched per
/// model, so an export is a pure function of the checkpoint.
pub const TANH_RANGE: f64 = 3.25;

/// The logits' scale: Q16, `2^-16` (`namegen_model::q8::LOGIT_FRAC_BITS`).
const LOGIT_SCALE: f64 = 1.0 / (1u32 << namegen_model::q8::LOGIT_FRAC_BITS) as f64;

/// A folded model quantised to q8: the integers its file stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q8Weights {
    /// `[vocab, embed_dim]` embedding codes.
    pub embedding: Vec<i8>,
    /// The shared `tanh` table.
    pub table: [i8; TANH_TABLE_LEN],
    /// One per Linear layer.
    pub layers: Vec<Q8Layer>,
}

/// One Linear layer's integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q8Layer {
    /// `[out, in]` weight codes.
    pub weight: Vec<i8>,
    /// Biases in accumulator units, each with its row's shift in a `bias_shift` word
    /// ([`namegen_model::q8::bias_shift`]): `-2^23..2^23`.
    pub bias_shift: Vec<i32>,
    /// Per-row multipliers as stored, in `[2^14, 2^15)`.
    pub multiplier: Vec<i16>,
}

/// Why a folded model has no q8 form: a number the recipe asks for does not fit its integer.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    /// A bias in accumulator units beyond the 24 bits a `bias_shift` word holds
    /// (`-2^23..2^23`): the bias is huge next to its row's weights.
    #[error(
        "layers.{layer}.bias_shift row {row}: a bias of {value:e} accumulator units does not \
         fit 24 bits (-2^23..2^23; the bias is too large next to the row's weights)"
    )]
    Bias {
        /// The Linear layer.
        layer: usize,
        /// The row.
        row: usize,
        /// The bias in accumulator units.
        value: f64,
    },
    /// A row's real multiplier needs a shift outside `-31..=30` (or is not a positive
    /// number): its weights are extremely small or large.
    #[error(
        "layers.{layer} row {row}: the multiplier {real:e} cannot be stored as an int16 and \
         a shift in -31..=30 (the row's weights are extremely small or large)"
    )]
    Multiplier {
        /// The Linear layer.
        layer: usize,
        /// The row.
        row: usize,
        /// The real multiplier.
        real: f64,
    },
}

impl Q8Weights {
    /// Quantises `folded` with the recipe of the module's documentation.
    pub fn quantize(folded: &FoldedWeights) -> Result<Self, QuantizeError> {
        let s_e = symmetric_scale(&folded.embedding);
        let embedding = folded
            .embedding
            .iter()
            .map(|&v| quantize_symmetric(v, s_e))
            .collect();
        let hidden_scale = TANH_RANGE / 127.0;
        let last = folded.weights.len() - 1;
        let mut s_x = s_e;
        let mut layers = Vec::with_capacity(folded.weights.len());
        for (layer, (w, b)) in folded.weights.iter().zip(&folded.biases).enumerate() {
            let s_out = if layer == last {
                LOGIT_SCALE
            } else {
                hidden_scale
            };
            let cols = w.len() / b.len();
            let mut q = Q8Layer {
                weight: Vec::with_capacity(w.len()),
                bias_shift: Vec::with_capacity(b.len()),
                multiplier: Vec::with_capacity(b.len()),
            };
            for (row, (weights, &bias)) in w.chunks_exact(cols).zip(b).enumerate() {
                let s_w = symmetric_scale(weights);
                let s_acc = s_w * s_x;
                q.weight
                    .extend(weights.iter().map(|&v| quantize_symmetric(v, s_w)));
                let value = (bias / s_acc).round();
                let real = s_acc / s_out;
                let (multiplier, shift) = quantize_multiplier(real)
                    .ok_or(QuantizeError::Multiplier { layer, row, real })?;
                // Checked in f64 before the cast, which saturates; NaN (an infinite scale)
                // fails too.
                let word = Some(value)
                    .filter(|v| v.abs() <= f64::from(i32::MAX))
                    .and_then(|v| bias_shift(v as i32, shift))
                    .ok_or(QuantizeError::Bias { layer, row, value })?;
                q.bias_shift.push(word);
                q.multiplier.push(multiplier);
            }
            layers.push(q);
            s_x = 1.0 / 127.0;
        }
        Ok(Self {
            embedding,
            table: tanh_table(TANH_RANGE),
            layers,
        })
    }

    /// The stored bytes of one tensor of the q8 file (one of
    /// [`namegen_model::format::folded_tensors`] for q8), little-endian.
    pub fn tensor_bytes(&self, name: TensorName) -> Vec<u8> {
        let bytes = |v: &[i8]| v.iter().map(|&c| c as u8).collect();
        let layer = |i: usize| &self.layers[i];
        match name {
            TensorName::Embedding => bytes(&self.embedding),
            TensorName::TanhTable => bytes(&self.table),
            TensorName::Weight(i) => bytes(&layer(i).weight),
            TensorName::BiasShift(i) => layer(i)
                .bias_shift
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
            TensorName::Multiplier(i) => layer(i)
                .multiplier
                .iter()
                .flat_map(|m| m.to_le_bytes())
                .collect(),
            // Not a tensor of a q8 file.
            _ => Vec::new(),
        }
    }
}
