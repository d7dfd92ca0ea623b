//! The training loop's state and one step of it, evaluation, and BatchNorm calibration.
//!
//! Determinism: the weights are drawn, and every batch is sampled, from one pinned
//! [`Rng`] stream seeded by [`Recipe::seed`]; the backends run single-threaded (burn is built
//! without `rayon`), and every op is a deterministic kernel, so the same seed and flags give
//! bit-identical losses and weights. A checkpoint stores the step, the generator's state and
//! the recipe, so [`Trainer::resume`] continues exactly where the run stopped.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::TensorData;
use namegen_model::format::keys;
use namegen_model::{ModelConfig, Part, Rng};

use crate::backward::{self, Gradients};
use crate::diagnostics::Diagnostics;
use crate::interrupt::Interrupted;
use crate::network::{Batch, Mlp, Stats, TrainForward, values};
use namegen_files::checkpoint::{Checkpoint, LayerWeights};
use namegen_files::dataset::{Dataset, DatasetError, Examples, SplitExamples};

/// The PCG32 stream of the training generator, distinct from the split's default stream so
/// that the same seed number does not reuse the split's draws for the weights.
pub const TRAIN_STREAM: u64 = 0x6e61_6d65_6765_6e74; // "namegent"

/// The largest batch: its activations and gradients (about 100 values per example and layer)
/// take some hundreds of megabytes at this size.
pub const MAX_BATCH_SIZE: usize = 65_536;

/// The most activation values one step's forward pass holds (batch size times the widths of
/// every layer's output and the input): the autograd graph keeps several copies of each, so
/// this bounds a step to a few gigabytes whatever the widths.
pub const MAX_BATCH_VALUES: usize = 1 << 27;

/// Examples evaluated per forward pass in [`Trainer::evaluate`] and calibration.
const EVAL_CHUNK: usize = 4096;

/// Which burn CPU backend runs the tensors (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust `flex` backend (the default: the faster one in `namegen bench train`).
    Flex,
    /// burn's `ndarray` backend.
    Ndarray,
}

impl Backend {
    /// Both backends, the default first.
    pub const ALL: [Backend; 2] = [Backend::Flex, Backend::Ndarray];

    /// `flex` or `ndarray`, as on the command line and in checkpoints.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
        }
    }

    /// The burn device of this backend.
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
            // burn 0.22 deprecates the ndarray backend in favour of flex; our users asked for
            // it, so it stays selectable.
            #[allow(deprecated)]
            Backend::Ndarray => Device::ndarray(),
        }
    }
}

/// How the gradients are computed (`--grad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GradPath {
    /// The closed-form backward pass (the default: about twice as fast).
    ClosedForm,
    /// burn's autodiff.
    Autodiff,
}

impl GradPath {
    /// `closed-form` or `autodiff`, as on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            GradPath::ClosedForm => "closed-form",
            GradPath::Autodiff => "autodiff",
        }
    }
}

/// Everything that decides what a training run computes: `namegen train`'s recipe flags, whose
/// defaults are the seeds' recipe (makemore part 3) and [`Recipe::default`].
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct Recipe {
    /// SGD steps.
    #[arg(long, default_value_t = 200_000)]
    pub steps: u64,
    /// Seed of the initial weights and of the batch sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seed of the 80/10/10 train/val/test split.
    #[arg(long, default_value_t = namegen_model::split::DEFAULT_SEED)]
    pub split_seed: u64,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Learning rate before the late phase (must be positive).
    // Values starting with `-` are taken, so that `--lr -1e-3` gets the trainer's message.
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub lr: f64,
    /// Learning rate of the late phase (must be positive).
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    pub lr_late: f64,
    /// Fraction of the steps, at the end, run at --lr-late (0.25: the last quarter).
    #[arg(long, default_value_t = 0.25)]
    pub late_fraction: f64,
    /// Symbols of context.
    #[arg(long, default_value_t = 3)]
    pub block_size: usize,
    /// Embedding width.
    #[arg(long, default_value_t = 10)]
    pub embed_dim: usize,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,100,100,100,100")]
    pub hidden: Vec<usize>,
    /// Standard deviation of the initial embedding, N(0, std^2).
    #[arg(long, default_value_t = 1.0)]
    pub embed_std: f64,
    /// Gain of the initial Linear weights: N(0, 1) * gain / sqrt(fan_in).
    #[arg(long, default_value_t = 1.0)]
    pub weight_gain: f64,
    /// Initial BatchNorm gamma.
    #[arg(long, default_value_t = 1.0)]
    pub gamma: f64,
    /// Initial BatchNorm beta.
    #[arg(long, default_value_t = 0.0)]
    pub beta: f64,
    /// Factor on the last BatchNorm's initial gamma (less confident logits at the start).
    #[arg(long, default_value_t = 0.1)]
    pub last_gamma_scale: f64,
    /// BatchNorm running-statistics momentum (PyTorch's convention).
    #[arg(long, default_value_t = 0.1)]
    pub momentum: f64,
    /// BatchNorm epsilon.
    #[arg(long, default_value_t = 1e-5)]
    pub eps: f64,
}

impl Default for Recipe {
    /// The values the flags take when none is given: the `#[arg]` defaults above are their
    /// one definition.
    fn default() -> Self {
        crate::flags::defaults()
    }
}

impl Recipe {
    /// The first step that uses [`Recipe::lr_late`].
    pub fn late_start(&self) -> u64 {
        let late = (self.steps as f64 * self.late_fraction).round() as u64;
        self.steps - late.min(self.steps)
    }

    /// The learning rate of step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.late_start() {
            self.lr
        } else {
            self.lr_late
        }
    }

    /// The architecture for a vocabulary of `vocab_size` symbols.
    pub fn config(&self, vocab_size: usize) -> Result<ModelConfig, TrainError> {
        ModelConfig::new(self.block_size, self.embed_dim, &self.hidden, vocab_size)
            .map_err(|e| TrainError::Recipe(e.to_string()))
    }

    /// Checks the values a config does not check.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: &str| Err(TrainError::Recipe(what.to_owned()));
        if self.batch_size < 2 {
            return bad("the batch size must be at least 2 (BatchNorm needs a variance)");
        }
        if self.batch_size > MAX_BATCH_SIZE {
            return Err(TrainError::Recipe(format!(
                "the batch size {} is above {MAX_BATCH_SIZE}, the most a step holds in memory",
                self.batch_size
            )));
        }
        let per_example = self.block_size.saturating_mul(self.embed_dim)
            + self
                .hidden
                .iter()
                .fold(namegen_model::MAX_VOCAB, |a, &w| a.saturating_add(w));
        let values = self.batch_size.saturating_mul(per_example);
        if values > MAX_BATCH_VALUES {
            return Err(TrainError::Recipe(format!(
                "a batch of {} examples with these layer widths holds {values} activations per \
                 step, above {MAX_BATCH_VALUES}, the most a step holds in memory: use a smaller \
                 batch or narrower layers",
                self.batch_size
            )));
        }
        if !(self.lr > 0.0 && self.lr_late > 0.0) {
            return bad("learning rates must be positive (a step descends the loss)");
        }
        let finite = [
            self.lr,
            self.lr_late,
            self.embed_std,
            self.weight_gain,
            self.gamma,
            self.beta,
            self.last_gamma_scale,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return bad("learning rates and initial values must be finite");
        }
        if !(0.0..=1.0).contains(&self.late_fraction) {
            return bad("the late fraction must be in 0..=1");
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return bad("the BatchNorm momentum must be in 0..=1");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("the BatchNorm epsilon must be positive");
        }
        Ok(())
    }

    /// The recipe as `train.recipe.*` metadata: every value written so that it reads back
    /// exactly (Rust's shortest round-trip formatting).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let hidden: Vec<String> = self.hidden.iter().map(usize::to_string).collect();
        [
            ("block_size", self.block_size.to_string()),
            ("embed_dim", self.embed_dim.to_string()),
            ("hidden", hidden.join(",")),
            ("steps", self.steps.to_string()),
            ("batch_size", self.batch_size.to_string()),
            ("lr", format!("{:?}", self.lr)),
            ("lr_late", format!("{:?}", self.lr_late)),
            ("late_fraction", format!("{:?}", self.late_fraction)),
            ("embed_std", format!("{:?}", self.embed_std)),
            ("weight_gain", format!("{:?}", self.weight_gain)),
            ("gamma", format!("{:?}", self.gamma)),
            ("beta", format!("{:?}", self.beta)),
            ("last_gamma_scale", format!("{:?}", self.last_gamma_scale)),
            ("momentum", format!("{:?}", self.momentum)),
            ("eps", format!("{:?}", self.eps)),
            ("seed", self.seed.to_string()),
            ("split_seed", self.split_seed.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{}{k}", keys::TRAIN_RECIPE_PREFIX), v))
        .collect()
    }
}

/// Why training cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The names file is unusable.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A checkpoint cannot be read or written.
    #[error(transparent)]
    Checkpoint(#[from] namegen_files::checkpoint::CheckpointError),
    /// The recipe (flags) is invalid.
    #[error("invalid training recipe: {0}")]
    Recipe(String),
    /// A checkpoint to resume from does not fit the data or the flags.
    #[error("cannot resume from {path}: {reason}")]
    Resume {
        /// The checkpoint.
        path: String,
        /// What does not fit.
        reason: String,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step}: the loss is {loss}")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss.
        loss: f32,
    },
}

/// Mean loss of one split part, in eval mode, two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartLoss {
    /// Which part.
    pub part: Part,
    /// With the BatchNorm running statistics.
    pub running: f64,
    /// With BatchNorm statistics calibrated over the whole training set.
    pub calibrated: f64,
}

/// A training run in progress: the data, the network, the step and the generator.
pub struct Trainer {
    /// The architecture.
    pub config: ModelConfig,
    /// What the run computes.
    pub recipe: Recipe,
    /// The names file and its vocabulary.
    pub dataset: Dataset,
    /// The split's examples.
    pub examples: SplitExamples,
    /// The network.
    pub model: Mlp,
    /// Steps done.
    pub step: u64,
    /// The generator of batches (the weights were drawn from it first).
    pub rng: Rng,
    /// Where the tensors live.
    pub backend: Backend,
    /// How the gradients are computed.
    pub grad_path: GradPath,
    device: Device,
}

impl Trainer {
    /// A fresh run: weights drawn from the recipe's seed.
    pub fn new(
        dataset: Dataset,
        recipe: Recipe,
        backend: Backend,
        grad_path: GradPath,
    ) -> Result<Self, TrainError> {
        recipe.validate()?;
        let config = recipe.config(dataset.vocab.len())?;
        let examples = SplitExamples::new(&dataset, recipe.split_seed, config.block_size())?;
        let mut rng = Rng::with_stream(recipe.seed, TRAIN_STREAM);
        let checkpoint = initial_weights(&config, &recipe, &dataset, &mut rng);
        let device = backend.device();
        Ok(Self {
            model: Mlp::from_checkpoint(&checkpoint, &device),
            config,
            recipe,
            dataset,
            examples,
            step: 0,
            rng,
            backend,
            grad_path,
            device,
        })
    }

    /// Continues the run saved in `checkpoint`. The recipe and the names file must be the
    /// ones it was trained with, so that the result is bit-identical to an uninterrupted run.
    pub fn resume(
        dataset: Dataset,
        recipe: Recipe,
        checkpoint: &Checkpoint,
        checkpoint_path: &str,
        backend: Backend,
        grad_path: GradPath,
    ) -> Result<Self, TrainError> {
        let fail = |reason: String| TrainError::Resume {
            path: checkpoint_path.to_owned(),
            reason,
        };
        let mut trainer = Self::new(dataset, recipe, backend, grad_path)?;
        let extra = &checkpoint.extra;
        for (key, value) in trainer.recipe.to_metadata() {
            match extra.get(&key) {
                Some(saved) if *saved == value => {}
                Some(saved) => {
                    let flag = key.trim_start_matches(keys::TRAIN_RECIPE_PREFIX);
                    return Err(fail(format!(
                        "it was trained with {flag} = {saved}, not {value}"
                    )));
                }
                None => {
                    return Err(fail(format!(
                        "it has no {key} (not written by `namegen train`)"
                    )));
                }
            }
        }
        let sha = extra.get(keys::DATASET_SHA256).map(String::as_str);
        if sha != Some(trainer.dataset.sha256.as_str()) {
            return Err(fail(format!(
                "it was trained on another names file than {}",
                trainer.dataset.path.display()
            )));
        }
        if checkpoint.vocab != trainer.dataset.vocab || checkpoint.config != trainer.config {
            return Err(fail("its vocabulary or architecture differs".into()));
        }
        let number = |key: &str| -> Result<u64, TrainError> {
            extra
                .get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| fail(format!("metadata {key} is missing or not a number")))
        };
        let step = number(keys::TRAIN_STEP)?;
        if step > trainer.recipe.steps {
            return Err(fail(format!(
                "it is at step {step}, past the {} steps of the recipe",
                trainer.recipe.steps
            )));
        }
        trainer.step = step;
        trainer.rng = Rng::from_parts(
            number(keys::TRAIN_RNG_STATE)?,
            number(keys::TRAIN_RNG_INCREMENT)?,
        );
        trainer.model = Mlp::from_checkpoint(checkpoint, &trainer.device);
        Ok(trainer)
    }

    /// The burn device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// True when every step of the recipe is done.
    pub fn finished(&self) -> bool {
        self.step >= self.recipe.steps
    }

    /// Samples the next batch from the training examples.
    fn next_batch(&mut self) -> Batch {
        let train = &self.examples.train;
        let block = self.config.block_size();
        let mut contexts = Vec::with_capacity(self.recipe.batch_size * block);
        let mut targets = Vec::with_capacity(self.recipe.batch_size);
        for _ in 0..self.recipe.batch_size {
            let i = self.rng.below(train.len() as u32) as usize;
            contexts.extend_from_slice(&train.contexts[i * block..(i + 1) * block]);
            targets.push(train.targets[i]);
        }
        Batch::new(&contexts, &targets, self.config.vocab_size(), &self.device)
    }

    /// One SGD step; returns its training loss (before the update). With `diagnostics`,
    /// records the step's activation and gradient statistics when they are due.
    pub fn step(&mut self, diagnostics: Option<&mut Diagnostics>) -> Result<f32, TrainError> {
        let lr = self.recipe.lr_at(self.step);
        let batch = self.next_batch();
        let record = diagnostics.as_ref().is_some_and(|d| d.due(self.step));
        let (loss, forward, gradients) = match self.grad_path {
            GradPath::ClosedForm => {
                let forward =
                    self.model
                        .forward_train(batch.one_hot.clone(), &self.config, self.recipe.eps);
                let (loss, probs) =
                    backward::cross_entropy(forward.logits.clone(), batch.targets.clone());
                let gradients = backward::closed_form(
                    &self.model,
                    &forward,
                    probs,
                    &batch,
                    &self.config,
                    lr,
                    record,
                );
                (loss.into_scalar::<f32>(), forward, gradients)
            }
            GradPath::Autodiff => {
                backward::autodiff(&self.model, &batch, &self.config, self.recipe.eps, lr)
            }
        };
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                step: self.step,
                loss,
            });
        }
        if let Some(diagnostics) = diagnostics {
            diagnostics.push_loss(loss);
            if record {
                diagnostics.record(self.step, lr, &self.model, &forward, &gradients);
            }
        }
        self.finish_step(&forward, &gradients);
        Ok(loss)
    }

    fn finish_step(&mut self, forward: &TrainForward, gradients: &Gradients) {
        self.model.apply(gradients);
        self.model
            .update_running_stats(forward, self.recipe.momentum);
        self.step += 1;
    }

    /// The run as an unfolded checkpoint: weights, provenance and resume state.
    pub fn checkpoint(&self, val_loss: Option<f64>) -> Checkpoint {
        let (embedding, layers) = self.model.to_values();
        let mut extra = self.recipe.to_metadata();
        let (state, increment) = self.rng.to_parts();
        for (key, value) in [
            (keys::TRAIN_STEP, self.step.to_string()),
            (keys::TRAIN_RNG_STATE, state.to_string()),
            (keys::TRAIN_RNG_INCREMENT, increment.to_string()),
            (keys::STEPS, self.step.to_string()),
            (keys::SEED, self.recipe.seed.to_string()),
            (keys::BACKEND, self.backend.name().to_owned()),
            (keys::DATASET_SHA256, self.dataset.sha256.clone()),
            (keys::WRITER, crate::WRITER.to_owned()),
        ] {
            extra.insert(key.to_owned(), value);
        }
        if let Some(loss) = val_loss {
            extra.insert(keys::VAL_LOSS.to_owned(), format!("{loss:.4}"));
        }
        Checkpoint {
            config: self.config,
            vocab: self.dataset.vocab.clone(),
            bn_eps: self.recipe.eps,
            embedding,
            layers,
            extra,
        }
    }

    /// Mean cross-entropy of `examples` in eval mode with BatchNorm statistics `stats`; a
    /// signal stops it between chunks (a large names file takes minutes).
    pub fn evaluate(&self, examples: &Examples, stats: &[Stats]) -> Result<f64, Interrupted> {
        let block = self.config.block_size();
        let vocab = self.config.vocab_size();
        let mut total = 0.0;
        for start in (0..examples.len()).step_by(EVAL_CHUNK) {
            crate::interrupt::check()?;
            let end = (start + EVAL_CHUNK).min(examples.len());
            let batch = Batch::new(
                &examples.contexts[start * block..end * block],
                &examples.targets[start..end],
                vocab,
                &self.device,
            );
            let logits =
                self.model
                    .forward_eval(batch.one_hot, &self.config, stats, self.recipe.eps, None);
            let (loss, _) = backward::cross_entropy(logits, batch.targets);
            total += f64::from(loss.into_scalar::<f32>()) * (end - start) as f64;
        }
        Ok(total / examples.len().max(1) as f64)
    }

    /// BatchNorm statistics measured over the whole training set, as the seeds do after
    /// training: layer by layer, each from the Linear outputs of the network whose earlier
    /// layers already use their calibrated statistics. Mean and unbiased variance, summed in
    /// f64. A signal stops it between chunks.
    pub fn calibrate(&self) -> Result<Vec<Stats>, Interrupted> {
        let train = &self.examples.train;
        let block = self.config.block_size();
        let vocab = self.config.vocab_size();
        let mut stats = self.model.running_stats();
        for layer in 0..self.config.n_layers() {
            let width = self.config.layer_dims(layer).map_or(0, |(_, o)| o);
            let (mut sum, mut sum_sq) = (vec![0f64; width], vec![0f64; width]);
            for start in (0..train.len()).step_by(EVAL_CHUNK) {
                crate::interrupt::check()?;
                let end = (start + EVAL_CHUNK).min(train.len());
                let one_hot = crate::network::one_hot(
                    &train.contexts[start * block..end * block],
                    vocab,
                    &self.device,
                );
                let h = self.model.forward_eval(
                    one_hot,
                    &self.config,
                    &stats,
                    self.recipe.eps,
                    Some(layer),
                );
                for row in values(&h).chunks_exact(width) {
                    for (j, &v) in row.iter().enumerate() {
                        sum[j] += f64::from(v);
                        sum_sq[j] += f64::from(v) * f64::from(v);
                    }
                }
            }
            let n = train.len() as f64;
            let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
            let var: Vec<f32> = sum
                .iter()
                .zip(&sum_sq)
                .map(|(s, q)| ((q - s * s / n) / (n - 1.0).max(1.0)).max(0.0) as f32)
                .collect();
            let row = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [1, width]), &self.device);
            stats[layer] = Stats {
                mean: row(mean),
                var: row(var),
            };
        }
        Ok(stats)
    }

    /// Train, val and test loss in eval mode, with running and with calibrated statistics.
    /// A signal stops it between chunks.
    pub fn report(&self) -> Result<Vec<PartLoss>, Interrupted> {
        let running = self.model.running_stats();
        let calibrated = self.calibrate()?;
        Part::ALL
            .into_iter()
            .map(|part| {
                Ok(PartLoss {
                    part,
                    running: self.evaluate(self.examples.part(part), &running)?,
                    calibrated: self.evaluate(self.examples.part(part), &calibrated)?,
                })
            })
            .collect()
    }
}

/// The initial weights of the recipe, drawn from `rng` in a fixed order: the embedding
/// (row-major `[vocab, embed_dim]`), then each Linear weight in PyTorch makemore's
/// `[in, out]` row-major order.
fn initial_weights(
    config: &ModelConfig,
    recipe: &Recipe,
    dataset: &Dataset,
    rng: &mut Rng,
) -> Checkpoint {
    let mut normals = |count: usize, std: f64| -> Vec<f32> {
        (0..count).map(|_| (rng.normal() * std) as f32).collect()
    };
    let embedding = normals(config.vocab_size() * config.embed_dim(), recipe.embed_std);
    let last = config.n_layers() - 1;
    let layers = (0..config.n_layers())
        .map(|i| {
            let (inputs, outputs) = config.layer_dims(i).unwrap_or((0, 0));
            let in_out = normals(
                inputs * outputs,
                recipe.weight_gain / (inputs as f64).sqrt(),
            );
            let mut weight = vec![0f32; in_out.len()];
            for r in 0..inputs {
                for c in 0..outputs {
                    weight[c * inputs + r] = in_out[r * outputs + c];
                }
            }
            let gamma = if i == last {
                recipe.gamma * recipe.last_gamma_scale
            } else {
                recipe.gamma
            };
            LayerWeights {
                weight,
                gamma: vec![gamma as f32; outputs],
                beta: vec![recipe.beta as f32; outputs],
                running_mean: vec![0.0; outputs],
                running_var: vec![1.0; outputs],
            }
        })
        .collect();
    Checkpoint {
        config: *config,
        vocab: dataset.vocab.clone(),
        bn_eps: recipe.eps,
        embedding,
        layers,
        extra: BTreeMap::new(),
    }
}
