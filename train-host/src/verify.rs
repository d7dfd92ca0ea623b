//! Verification: does the folded model say what the unfolded model says?
//!
//! Both models are run on every possible context (`vocab ^ block_size` of them, 19,683 for
//! the default model; above [`MAX_EXHAUSTIVE`] a seeded sample of that many) and on the
//! validation split, and compared: logits, probabilities, KL divergence, top-1 agreement
//! and validation loss. Each dtype has its own bound, [`Bound::for_dtype`].

use std::fmt;

use namegen_model::config::MAX_WIDTH;
use namegen_model::{Dtype, ModelConfig, Rng};
use namegen_sampler::{Forward, ModelView};

use crate::network::{Mlp, one_hot, values};
use crate::trainer::Backend;
use burn::prelude::Device;
use namegen_files::checkpoint::Checkpoint;

/// The most contexts compared one by one; larger context spaces are sampled.
pub const MAX_EXHAUSTIVE: usize = 1 << 20;

/// Something that maps contexts to logits: the unfolded model in burn or in the f64
/// reference, or the folded model through the sampler's forward pass.
pub trait LogitSource {
    /// Writes `contexts.len() / block_size` rows of `vocab_size` logits into `out`.
    /// Contexts hold valid symbol indices and `out` has room for every row.
    fn logits(&mut self, contexts: &[u8], out: &mut [f64]);
}

/// The folded model as devices run it: the sampler crate's forward pass over the file bytes.
pub struct SamplerLogits<'a> {
    model: &'a ModelView<'a>,
    forward: Box<Forward<MAX_WIDTH>>,
}

impl<'a> SamplerLogits<'a> {
    /// The forward pass of `model` (any width up to the contract's maximum).
    pub fn new(model: &'a ModelView<'a>) -> Self {
        Self {
            model,
            forward: Box::new(Forward::new()),
        }
    }
}

impl LogitSource for SamplerLogits<'_> {
    fn logits(&mut self, contexts: &[u8], out: &mut [f64]) {
        let (block, vocab) = (
            self.model.config().block_size(),
            self.model.config().vocab_size(),
        );
        for (context, row) in contexts
            .chunks_exact(block)
            .zip(out.chunks_exact_mut(vocab))
        {
            let logits = self.forward.logits(self.model, context);
            row.iter_mut()
                .zip(logits)
                .for_each(|(o, &l)| *o = f64::from(l));
        }
    }
}

/// The unfolded eval-mode model in burn, with its running statistics.
pub struct BurnLogits {
    model: Mlp,
    config: ModelConfig,
    eps: f64,
    device: Device,
}

impl BurnLogits {
    /// The checkpoint's network on `backend`.
    pub fn new(checkpoint: &Checkpoint, backend: Backend) -> Self {
        let device = backend.device();
        Self {
            model: Mlp::from_checkpoint(checkpoint, &device),
            config: checkpoint.config,
            eps: checkpoint.bn_eps,
            device,
        }
    }
}

impl LogitSource for BurnLogits {
    fn logits(&mut self, contexts: &[u8], out: &mut [f64]) {
        let (block, vocab) = (self.config.block_size(), self.config.vocab_size());
        let stats = self.model.running_stats();
        // Chunks keep burn's temporaries small for large context sets.
        let rows_per_chunk = 8192;
        for (contexts, out) in contexts
            .chunks(rows_per_chunk * block)
            .zip(out.chunks_mut(rows_per_chunk * vocab))
        {
            let input = one_hot(contexts, vocab, &self.device);
            let logits = self
                .model
                .forward_eval(input, &self.config, &stats, self.eps, None);
            out.iter_mut()
                .zip(values(&logits))
                .for_each(|(o, l)| *o = f64::from(l));
        }
    }
}

/// The contexts to compare on: every one, or a seeded sample when there are too many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextSet {
    /// `count * block_size` symbol indices, one context after another.
    pub ids: Vec<u8>,
    /// Symbols per context.
    pub block_size: usize,
    /// Whether this is every possible context.
    pub exhaustive: bool,
}

impl ContextSet {
    /// Every context of `block_size` symbols over `vocab_size` symbols, in lexicographic order
    /// (or [`MAX_EXHAUSTIVE`] of them drawn with [`Rng::new`]`(seed)` when there are more).
    pub fn new(vocab_size: usize, block_size: usize, seed: u64) -> Self {
        let total = (0..block_size).try_fold(1usize, |n, _| n.checked_mul(vocab_size));
        let exhaustive = total.is_some_and(|n| n <= MAX_EXHAUSTIVE);
        let mut ids = Vec::new();
        if exhaustive {
            let total = total.unwrap_or(0);
            for index in 0..total {
                let mut rest = index;
                let start = ids.len();
                ids.resize(start + block_size, 0);
                for slot in ids[start..].iter_mut().rev() {
                    *slot = (rest % vocab_size) as u8;
                    rest /= vocab_size;
                }
            }
        } else {
            let mut rng = Rng::new(seed);
            ids = (0..MAX_EXHAUSTIVE * block_size)
                .map(|_| rng.below(vocab_size as u32) as u8)
                .collect();
        }
        Self {
            ids,
            block_size,
            exhaustive,
        }
    }

    /// How many contexts.
    pub fn len(&self) -> usize {
        self.ids.len() / self.block_size
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What the comparison measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The folded model's dtype.
    pub dtype: String,
    /// Contexts compared.
    pub contexts: usize,
    /// Whether they were every possible context.
    pub exhaustive: bool,
    /// max |logit_unfolded - logit_folded| over every context and symbol.
    pub max_logit_diff: f64,
    /// max |p_unfolded - p_folded| over every context and symbol.
    pub max_prob_diff: f64,
    /// Mean over contexts of KL(unfolded || folded), in nats.
    pub mean_kl: f64,
    /// Max over contexts of KL(unfolded || folded), in nats.
    pub max_kl: f64,
    /// Fraction of contexts where both models rank the same symbol first.
    pub top1_agreement: f64,
    /// Validation loss of the unfolded model (mean cross-entropy, nats).
    pub val_loss_unfolded: f64,
    /// Validation loss of the folded model.
    pub val_loss_folded: f64,
    /// The bound this dtype must meet.
    pub bound: Bound,
    /// Whether the bound holds.
    pub passed: bool,
}

/// The promise each dtype makes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Bound {
    /// f32: max |logit difference| at most this.
    MaxLogitDiff(f64),
    /// f16: mean KL(unfolded || folded) at most this many nats.
    MeanKl(f64),
    /// i8 and q8: validation loss at most this much above the unfolded model's.
    ValLossIncrease(f64),
}

impl Bound {
    /// f32: 1e-4 on logits; f16: 1e-4 nats mean KL; i8: 0.01 nats of validation loss; q8:
    /// 0.003 nats of validation loss.
    pub fn for_dtype(dtype: Dtype) -> Self {
        match dtype {
            Dtype::F32 => Bound::MaxLogitDiff(1e-4),
            Dtype::F16 => Bound::MeanKl(1e-4),
            Dtype::I8 => Bound::ValLossIncrease(0.01),
            // Integer inference: the prototype's quantisation costs 0.00015 nats on the
            // default model; 0.003 leaves room for other models without hiding a broken one.
            Dtype::Q8 => Bound::ValLossIncrease(0.003),
        }
    }

    fn holds(&self, report: &Report) -> bool {
        match *self {
            Bound::MaxLogitDiff(b) => report.max_logit_diff <= b,
            Bound::MeanKl(b) => report.mean_kl <= b,
            Bound::ValLossIncrease(b) => report.val_loss_folded - report.val_loss_unfolded <= b,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::MaxLogitDiff(b) => write!(f, "max |logit difference| <= {b:e}"),
            Bound::MeanKl(b) => write!(f, "mean KL <= {b:e} nats"),
            Bound::ValLossIncrease(b) => write!(f, "val loss increase <= {b} nats"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = if self.exhaustive {
            "all"
        } else {
            "a sample of"
        };
        writeln!(
            f,
            "dtype {}: {which} {} contexts",
            self.dtype, self.contexts
        )?;
        writeln!(f, "  max |logit difference|   {:.3e}", self.max_logit_diff)?;
        writeln!(f, "  max |prob difference|    {:.3e}", self.max_prob_diff)?;
        writeln!(
            f,
            "  KL(unfolded || folded)   mean {:.3e}  max {:.3e} nats",
            self.mean_kl, self.max_kl
        )?;
        writeln!(
            f,
            "  top-1 agreement          {:.4}%",
            100.0 * self.top1_agreement
        )?;
        writeln!(
            f,
            "  val loss                 unfolded {:.5}  folded {:.5}  ({:+.2e})",
            self.val_loss_unfolded,
            self.val_loss_folded,
            self.val_loss_folded - self.val_loss_unfolded
        )?;
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "  bound                    {} -> {verdict}", self.bound)
    }
}

/// Compares `unfolded` and `folded` on `contexts`, and their cross-entropy on the
/// validation examples (`val_contexts`, `block_size` ids each, with `val_targets`).
pub fn compare(
    unfolded: &mut dyn LogitSource,
    folded: &mut dyn LogitSource,
    vocab_size: usize,
    dtype: Dtype,
    contexts: &ContextSet,
    val_contexts: &[u8],
    val_targets: &[u8],
) -> Report {
    let n = contexts.len();
    let mut a = vec![0.0; n * vocab_size];
    let mut b = vec![0.0; n * vocab_size];
    unfolded.logits(&contexts.ids, &mut a);
    folded.logits(&contexts.ids, &mut b);

    let mut report = Report {
        dtype: dtype.name().to_string(),
        contexts: n,
        exhaustive: contexts.exhaustive,
        max_logit_diff: 0.0,
        max_prob_diff: 0.0,
        mean_kl: 0.0,
        max_kl: 0.0,
        top1_agreement: 0.0,
        val_loss_unfolded: 0.0,
        val_loss_folded: 0.0,
        bound: Bound::for_dtype(dtype),
        passed: false,
    };
    let mut agree = 0usize;
    let mut kl_sum = 0.0;
    for (la, lb) in a.chunks_exact(vocab_size).zip(b.chunks_exact(vocab_size)) {
        let (pa, pb) = (log_softmax(la), log_softmax(lb));
        let mut kl = 0.0;
        for i in 0..vocab_size {
            report.max_logit_diff = report.max_logit_diff.max((la[i] - lb[i]).abs());
            report.max_prob_diff = report.max_prob_diff.max((pa[i].exp() - pb[i].exp()).abs());
            kl += pa[i].exp() * (pa[i] - pb[i]);
        }
        kl_sum += kl;
        report.max_kl = report.max_kl.max(kl);
        agree += usize::from(argmax(la) == argmax(lb));
    }
    report.mean_kl = kl_sum / n as f64;
    report.top1_agreement = agree as f64 / n as f64;
    report.val_loss_unfolded = mean_loss(unfolded, vocab_size, val_contexts, val_targets);
    report.val_loss_folded = mean_loss(folded, vocab_size, val_contexts, val_targets);
    report.passed = report.bound.holds(&report);
    report
}

/// Mean cross-entropy of `source` on the examples.
pub fn mean_loss(
    source: &mut dyn LogitSource,
    vocab_size: usize,
    contexts: &[u8],
    targets: &[u8],
) -> f64 {
    let mut logits = vec![0.0; targets.len() * vocab_size];
    source.logits(contexts, &mut logits);
    let total: f64 = logits
        .chunks_exact(vocab_size)
        .zip(targets)
        .map(|(row, &t)| namegen_model::reference::cross_entropy(row, t))
        .sum();
    total / targets.len().max(1) as f64
}

fn log_softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln() + max;
    logits.iter().map(|l| l - log_sum).collect()
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}
