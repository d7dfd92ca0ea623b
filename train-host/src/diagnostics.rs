//! The lecture's training diagnostics (makemore part 3): for each Tanh layer the activation
//! mean, standard deviation and saturation (|t| > 0.97) and the standard deviation of the
//! gradient at its output; for each Linear weight the grad:data ratio and the update:data
//! ratio (log10), recorded every few steps; the loss of every step; and activation and
//! gradient histograms of the last recorded step. Saved as JSON; [`crate::plots`] draws it.

use serde::{Deserialize, Deserializer, Serialize};

use crate::backward::Gradients;
use crate::network::{Mlp, TrainForward, values};

/// A tanh output counts as saturated above this magnitude (the lecture's threshold).
pub const SATURATION: f32 = 0.97;

/// Bins of every histogram.
pub const HISTOGRAM_BINS: usize = 100;

/// Statistics of one Tanh layer at one step. A statistic that is not a number (the gradient's,
/// when the gradients were not recorded) is `null` in the file and NaN here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TanhStats {
    /// Mean of the activations.
    #[serde(deserialize_with = "nan_for_null")]
    pub mean: f64,
    /// Standard deviation of the activations.
    #[serde(deserialize_with = "nan_for_null")]
    pub std: f64,
    /// Fraction of activations with |t| > [`SATURATION`].
    #[serde(deserialize_with = "nan_for_null")]
    pub saturation: f64,
    /// Standard deviation of the loss gradient at the activations.
    #[serde(deserialize_with = "nan_for_null")]
    pub grad_std: f64,
}

/// Statistics of one Linear weight at one step (`null` in the file, NaN here, when not a
/// number: a weight that is all zeros has no ratio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightStats {
    /// std(gradient) / std(weight).
    #[serde(deserialize_with = "nan_for_null")]
    pub grad_to_data: f64,
    /// log10(std(lr * gradient) / std(weight)): the lecture keeps this near -3.
    #[serde(deserialize_with = "nan_for_null")]
    pub update_to_data_log10: f64,
}

/// JSON has no NaN or infinity: serde_json writes them as `null`, read back here as NaN
/// (which the plots skip) rather than refusing the whole file.
fn nan_for_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Everything recorded at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The step (0-based).
    pub step: u64,
    /// Its learning rate.
    pub lr: f64,
    /// One per Tanh layer.
    pub tanh: Vec<TanhStats>,
    /// One per Linear layer.
    pub weights: Vec<WeightStats>,
}

/// A histogram over `[min, max]` in [`HISTOGRAM_BINS`] equal bins, as densities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub min: f64,
    /// Upper edge of the last bin.
    pub max: f64,
    /// Fraction of values per bin, divided by the bin width.
    pub density: Vec<f64>,
}

impl Histogram {
    /// The histogram of `values` over their own range.
    pub fn of(values: &[f32]) -> Self {
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| {
            (lo.min(f64::from(v)), hi.max(f64::from(v)))
        });
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let width = (hi - lo) / HISTOGRAM_BINS as f64;
        let mut counts = vec![0usize; HISTOGRAM_BINS];
        for &v in values {
            let bin = ((f64::from(v) - lo) / width) as usize;
            counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
        }
        let total = values.len().max(1) as f64;
        Self {
            min: lo,
            max: hi,
            density: counts.iter().map(|&c| c as f64 / total / width).collect(),
        }
    }
}

/// The recorder a training run feeds.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// Record statistics every this many steps (0: never).
    pub every: u64,
    /// The step of the first loss in [`Diagnostics::losses`].
    pub first_step: u64,
    /// The training loss of every step since `first_step`.
    pub losses: Vec<f32>,
    /// Recorded statistics, in step order.
    pub records: Vec<Record>,
    /// Per Tanh layer, the activation histogram of the last record.
    pub activation_histograms: Vec<Histogram>,
    /// Per Tanh layer, the gradient histogram of the last record.
    pub gradient_histograms: Vec<Histogram>,
}

fn mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

impl Diagnostics {
    /// A recorder that records statistics every `every` steps, starting at `first_step`.
    pub fn new(every: u64, first_step: u64) -> Self {
        Self {
            every,
            first_step,
            ..Self::default()
        }
    }

    /// True when step `step` should be recorded.
    pub fn due(&self, step: u64) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    /// Adds one step's training loss.
    pub fn push_loss(&mut self, loss: f32) {
        self.losses.push(loss);
    }

    /// Records the statistics of one step. `gradients` are scaled by `lr` (as the trainer
    /// computes them) and hold the activation gradients.
    pub fn record(
        &mut self,
        step: u64,
        lr: f64,
        model: &Mlp,
        forward: &TrainForward,
        gradients: &Gradients,
    ) {
        let activations: Vec<Vec<f32>> = forward
            .layers
            .iter()
            .filter_map(|layer| layer.activation.as_ref().map(values))
            .collect();
        let grads: Vec<Vec<f32>> = gradients
            .activation_grads
            .iter()
            .map(|g| {
                values(g)
                    .iter()
                    .map(|v| (f64::from(*v) / lr) as f32)
                    .collect()
            })
            .collect();
        let tanh = activations
            .iter()
            .zip(
                grads
                    .iter()
                    .map(|g| mean_std(g).1)
                    .chain(std::iter::repeat(f64::NAN)),
            )
            .map(|(t, grad_std)| {
                let (mean, std) = mean_std(t);
                let saturated = t.iter().filter(|v| v.abs() > SATURATION).count();
                TanhStats {
                    mean,
                    std,
                    saturation: saturated as f64 / t.len().max(1) as f64,
                    grad_std,
                }
            })
            .collect();
        let weights = model
            .blocks
            .iter()
            .zip(&gradients.blocks)
            .map(|(block, g)| {
                let data_std = mean_std(&values(&block.weight.val())).1;
                let update_std = mean_std(&values(&g.weight)).1;
                WeightStats {
                    grad_to_data: update_std / lr / data_std,
                    update_to_data_log10: (update_std / data_std).log10(),
                }
            })
            .collect();
        self.activation_histograms = activations.iter().map(|t| Histogram::of(t)).collect();
        self.gradient_histograms = grads.iter().map(|g| Histogram::of(g)).collect();
        self.records.push(Record {
            step,
            lr,
            tanh,
            weights,
        });
    }

    /// Mean loss of each full block of `window` steps, with the step each block starts at.
    pub fn averaged_losses(&self, window: usize) -> Vec<(u64, f64)> {
        self.losses
            .chunks_exact(window.max(1))
            .enumerate()
            .map(|(i, chunk)| {
                let mean = chunk.iter().map(|&l| f64::from(l)).sum::<f64>() / chunk.len() as f64;
                (self.first_step + (i * window) as u64, mean)
            })
            .collect()
    }

    /// What the diagnostics file holds: per-1,000-step mean losses, the records, the
    /// histograms.
    pub fn to_file(&self) -> DiagnosticsFile {
        DiagnosticsFile {
            record_every: self.every,
            first_step: self.first_step,
            steps: self.losses.len() as u64,
            loss_per_1000_steps: self
                .averaged_losses(1000)
                .into_iter()
                .map(|(step, loss)| StepLoss { step, loss })
                .collect(),
            records: self.records.clone(),
            activation_histograms: self.activation_histograms.clone(),
            gradient_histograms: self.gradient_histograms.clone(),
        }
    }

    /// The last record as text, one line per Tanh layer and per Linear weight, like the
    /// lecture's printouts.
    pub fn summary(&self) -> Vec<String> {
        let Some(record) = self.records.last() else {
            return Vec::new();
        };
        let mut lines = vec![format!("diagnostics at step {}:", record.step)];
        for (i, t) in record.tanh.iter().enumerate() {
            lines.push(format!(
                "  tanh {i}: mean {:+.2}, std {:.2}, saturated {:.2}%, grad std {:.3e}",
                t.mean,
                t.std,
                100.0 * t.saturation,
                t.grad_std
            ));
        }
        for (i, w) in record.weights.iter().enumerate() {
            lines.push(format!(
                "  weight {i}: grad:data {:.3e}, update:data log10 {:.2}",
                w.grad_to_data, w.update_to_data_log10
            ));
        }
        lines
    }
}

/// The mean training loss of the 1,000 steps from `step` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLoss {
    /// The first step of the block.
    pub step: u64,
    /// The block's mean loss.
    #[serde(deserialize_with = "nan_for_null")]
    pub loss: f64,
}

/// The diagnostics file `namegen train --plots` writes and `namegen stats` reads: what the
/// plots draw, and the lecture's figures for anyone to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticsFile {
    /// Statistics were recorded every this many steps.
    pub record_every: u64,
    /// The step the run (or its resumed part) started at.
    pub first_step: u64,
    /// How many steps' losses were recorded.
    pub steps: u64,
    /// The mean loss of each full block of 1,000 steps.
    pub loss_per_1000_steps: Vec<StepLoss>,
    /// The recorded statistics, in step order.
    pub records: Vec<Record>,
    /// Per Tanh layer, the activation histogram of the last record.
    pub activation_histograms: Vec<Histogram>,
    /// Per Tanh layer, the gradient histogram (at its output) of the last record.
    pub gradient_histograms: Vec<Histogram>,
}

impl DiagnosticsFile {
    /// The file's bytes: pretty-printed JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("plain data always serialises")
    }

    /// Reads a file written by [`DiagnosticsFile::to_bytes`]; the error says what is missing
    /// or malformed, and where.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statistic that is not a number (no gradients recorded, a weight of zeros) is written
    /// as JSON's `null` and read back as NaN; everything else comes back as it was.
    #[test]
    fn the_file_round_trips_with_its_missing_statistics() {
        let mut diagnostics = Diagnostics::new(10, 20);
        diagnostics.losses = (0..2500).map(|i| 3.0 - i as f32 / 1000.0).collect();
        diagnostics.records.push(Record {
            step: 20,
            lr: 0.1,
            tanh: vec![TanhStats {
                mean: 0.01,
                std: 0.6,
                saturation: 0.05,
                grad_std: f64::NAN,
            }],
            weights: vec![WeightStats {
                grad_to_data: 0.002,
                update_to_data_log10: f64::NEG_INFINITY,
            }],
        });
        diagnostics.activation_histograms = vec![Histogram::of(&[-0.5, 0.0, 0.25, 0.9])];
        diagnostics.gradient_histograms = vec![Histogram::of(&[1e-3, -2e-3])];
        let file = diagnostics.to_file();
        let text = String::from_utf8(file.to_bytes()).unwrap();
        assert!(text.contains("\"grad_std\": null"), "{text}");
        assert!(text.contains("\"update_to_data_log10\": null"), "{text}");

        let read = DiagnosticsFile::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(read.loss_per_1000_steps.len(), 2);
        assert_eq!(read.loss_per_1000_steps[1].step, 1020);
        assert_eq!(read.steps, 2500);
        let (tanh, weight) = (&read.records[0].tanh[0], &read.records[0].weights[0]);
        assert!(tanh.grad_std.is_nan() && weight.update_to_data_log10.is_nan());
        assert_eq!((tanh.mean, tanh.std, tanh.saturation), (0.01, 0.6, 0.05));
        assert_eq!(weight.grad_to_data, 0.002);
        assert_eq!(read.activation_histograms, file.activation_histograms);
        assert_eq!(read.gradient_histograms, file.gradient_histograms);
    }

    /// A file that is JSON but not diagnostics is refused with the field that is wrong.
    #[test]
    fn a_file_of_another_shape_is_refused_by_name() {
        let error = DiagnosticsFile::from_bytes(br#"{"record_every": 10}"#).unwrap_err();
        assert!(error.to_string().contains("first_step"), "{error}");
    }
}
