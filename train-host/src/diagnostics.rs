//! The lecture's training diagnostics (makemore part 3): for each Tanh layer the activation
//! mean, standard deviation and saturation (|t| > 0.97) and the standard deviation of the
//! gradient at its output; for each Linear weight the grad:data ratio and the update:data
//! ratio (log10), recorded every few steps; the loss of every step; and activation and
//! gradient histograms of the last recorded step. Saved as JSON; [`crate::plots`] draws it.

use serde_json::{Value, json};

use crate::backward::Gradients;
use crate::network::{Mlp, TrainForward, values};

/// A tanh output counts as saturated above this magnitude (the lecture's threshold).
pub const SATURATION: f32 = 0.97;

/// Bins of every histogram.
pub const HISTOGRAM_BINS: usize = 100;

/// Statistics of one Tanh layer at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct TanhStats {
    /// Mean of the activations.
    pub mean: f64,
    /// Standard deviation of the activations.
    pub std: f64,
    /// Fraction of activations with |t| > [`SATURATION`].
    pub saturation: f64,
    /// Standard deviation of the loss gradient at the activations.
    pub grad_std: f64,
}

/// Statistics of one Linear weight at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightStats {
    /// std(gradient) / std(weight).
    pub grad_to_data: f64,
    /// log10(std(lr * gradient) / std(weight)): the lecture keeps this near -3.
    pub update_to_data_log10: f64,
}

/// Everything recorded at one step.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
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

    /// The diagnostics as JSON: per-1,000-step mean losses, the records, the histograms.
    pub fn to_json(&self) -> Value {
        let histogram = |h: &Histogram| json!({"min": h.min, "max": h.max, "density": h.density});
        json!({
            "record_every": self.every,
            "first_step": self.first_step,
            "steps": self.losses.len(),
            "loss_per_1000_steps": self.averaged_losses(1000)
                .iter()
                .map(|(step, loss)| json!({"step": step, "loss": loss}))
                .collect::<Vec<_>>(),
            "records": self.records.iter().map(|r| json!({
                "step": r.step,
                "lr": r.lr,
                "tanh": r.tanh.iter().map(|t| json!({
                    "mean": t.mean, "std": t.std, "saturation": t.saturation,
                    "grad_std": t.grad_std,
                })).collect::<Vec<_>>(),
                "weights": r.weights.iter().map(|w| json!({
                    "grad_to_data": w.grad_to_data,
                    "update_to_data_log10": w.update_to_data_log10,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "activation_histograms": self.activation_histograms.iter().map(histogram).collect::<Vec<_>>(),
            "gradient_histograms": self.gradient_histograms.iter().map(histogram).collect::<Vec<_>>(),
        })
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

/// The bytes of the diagnostics file: `value` ([`Diagnostics::to_json`]), pretty-printed.
pub fn file_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .into_bytes()
}

/// What [`crate::plots`] draws, as read back from a diagnostics JSON file.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// `(step, mean loss)` per 1,000 steps.
    pub losses: Vec<(u64, f64)>,
    /// `(step, update:data log10 per Linear layer)`.
    pub update_ratios: Vec<(u64, Vec<f64>)>,
    /// Per Tanh layer.
    pub activation_histograms: Vec<Histogram>,
    /// Per Tanh layer.
    pub gradient_histograms: Vec<Histogram>,
    /// Per Tanh layer, the statistics of the last record (for the histograms' legends).
    pub last_tanh: Vec<TanhStats>,
}

/// Reads what the plots need from a diagnostics JSON value; `None` if it is not one.
pub fn load(value: &Value) -> Option<Loaded> {
    let histograms = |key: &str| -> Option<Vec<Histogram>> {
        value[key]
            .as_array()?
            .iter()
            .map(|h| {
                Some(Histogram {
                    min: h["min"].as_f64()?,
                    max: h["max"].as_f64()?,
                    density: h["density"]
                        .as_array()?
                        .iter()
                        .map(|d| d.as_f64())
                        .collect::<Option<_>>()?,
                })
            })
            .collect()
    };
    let losses = value["loss_per_1000_steps"]
        .as_array()?
        .iter()
        .map(|e| Some((e["step"].as_u64()?, e["loss"].as_f64()?)))
        .collect::<Option<_>>()?;
    let update_ratios = value["records"]
        .as_array()?
        .iter()
        .map(|r| {
            let ratios = r["weights"]
                .as_array()?
                .iter()
                .map(|w| w["update_to_data_log10"].as_f64())
                .collect::<Option<_>>()?;
            Some((r["step"].as_u64()?, ratios))
        })
        .collect::<Option<_>>()?;
    let last_tanh = value["records"]
        .as_array()?
        .last()
        .and_then(|r| r["tanh"].as_array())
        .map(|layers| {
            layers
                .iter()
                .map(|t| TanhStats {
                    mean: t["mean"].as_f64().unwrap_or(f64::NAN),
                    std: t["std"].as_f64().unwrap_or(f64::NAN),
                    saturation: t["saturation"].as_f64().unwrap_or(f64::NAN),
                    grad_std: t["grad_std"].as_f64().unwrap_or(f64::NAN),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Loaded {
        losses,
        update_ratios,
        last_tanh,
        activation_histograms: histograms("activation_histograms")?,
        gradient_histograms: histograms("gradient_histograms")?,
    })
}
