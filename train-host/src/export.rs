//! Fold, quantise and encode: from an unfolded model to the bytes of a folded model file.
//!
//! Folding happens once, in f64, with the contract's arithmetic
//! ([`namegen_model::fold::fold`]); rounding to the stored dtype happens once, afterwards.

use std::collections::BTreeMap;

use half::f16;
use namegen_model::config::WidthList;
use namegen_model::fold::{BatchNorm, FoldError, fold};
use namegen_model::format::Storage;
use namegen_model::format::{self, keys};
use namegen_model::reference::{Folded, Unfolded, scratch_len};
use namegen_model::{Dtype, ModelConfig, TensorName, Vocabulary};

use crate::q8::{Q8Weights, QuantizeError};
use crate::verify::{Bound, ContextSet, LogitSource, SamplerLogits};
use namegen_files::checkpoint::Checkpoint;
use namegen_files::safetensors_file::{self, TensorBytes};

/// An unfolded checkpoint's numbers widened to f64, the precision of the fold.
#[derive(Clone, Debug, PartialEq)]
pub struct UnfoldedWeights {
    config: ModelConfig,
    eps: f64,
    embedding: Vec<f64>,
    /// Per layer: weight, gamma, beta, running mean, running variance.
    layers: Vec<[Vec<f64>; 5]>,
}

impl UnfoldedWeights {
    /// The checkpoint's values as f64 (exactly: every f32 is an f64).
    pub fn new(checkpoint: &Checkpoint) -> Self {
        let wide = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        let layers = checkpoint.layers.iter().map(|l| {
            [
                wide(&l.weight),
                wide(&l.gamma),
                wide(&l.beta),
                wide(&l.running_mean),
                wide(&l.running_var),
            ]
        });
        Self {
            config: checkpoint.config,
            eps: checkpoint.bn_eps,
            embedding: wide(&checkpoint.embedding),
            layers: layers.collect(),
        }
    }

    /// Runs `f` on the contract's reference view of these weights (eval mode).
    pub fn with_reference<R>(&self, f: impl FnOnce(&Unfolded<'_>) -> R) -> R {
        let weights: Vec<&[f64]> = self.layers.iter().map(|l| l[0].as_slice()).collect();
        let norms: Vec<BatchNorm<'_>> = self
            .layers
            .iter()
            .map(|[_, gamma, beta, running_mean, running_var]| BatchNorm {
                gamma,
                beta,
                running_mean,
                running_var,
                eps: self.eps,
            })
            .collect();
        f(&Unfolded {
            config: self.config,
            embedding: &self.embedding,
            weights: &weights,
            norms: &norms,
        })
    }
}

/// The unfolded eval-mode model in the contract's f64 reference pass.
impl LogitSource for UnfoldedWeights {
    fn logits(&mut self, contexts: &[u8], out: &mut [f64]) {
        self.with_reference(|model| {
            let (block, vocab) = (model.config.block_size(), model.config.vocab_size());
            let mut scratch = vec![0.0; scratch_len(&model.config)];
            for (context, row) in contexts
                .chunks_exact(block)
                .zip(out.chunks_exact_mut(vocab))
            {
                // The checkpoint reader has checked every shape, value and variance.
                let _ = model.logits(context, &mut scratch, row);
            }
        });
    }
}

/// The folded model in f64: what every stored dtype is rounded from.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldedWeights {
    /// The architecture.
    pub config: ModelConfig,
    /// `[vocab, embed_dim]`, row-major.
    pub embedding: Vec<f64>,
    /// One `[out, in]` row-major weight per Linear layer.
    pub weights: Vec<Vec<f64>>,
    /// One bias per Linear layer.
    pub biases: Vec<Vec<f64>>,
}

/// A layer whose BatchNorm cannot be folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("layer {layer}: {source}")]
pub struct LayerFoldError {
    /// The Linear layer.
    pub layer: usize,
    /// What is wrong with it.
    pub source: FoldError,
}

impl FoldedWeights {
    /// Folds every BatchNorm of `unfolded` into the Linear layer before it.
    pub fn fold(unfolded: &Unfolded<'_>) -> Result<Self, LayerFoldError> {
        let mut weights = Vec::with_capacity(unfolded.weights.len());
        let mut biases = Vec::with_capacity(unfolded.weights.len());
        for (layer, (weight, norm)) in unfolded.weights.iter().zip(unfolded.norms).enumerate() {
            let mut folded_weight = vec![0.0; weight.len()];
            let mut folded_bias = vec![0.0; norm.gamma.len()];
            fold(weight, norm, &mut folded_weight, &mut folded_bias)
                .map_err(|source| LayerFoldError { layer, source })?;
            weights.push(folded_weight);
            biases.push(folded_bias);
        }
        Ok(Self {
            config: unfolded.config,
            embedding: unfolded.embedding.to_vec(),
            weights,
            biases,
        })
    }

    /// Runs `f` on the contract's reference view of these weights.
    pub fn with_reference<R>(&self, f: impl FnOnce(&Folded<'_>) -> R) -> R {
        let weights: Vec<&[f64]> = self.weights.iter().map(Vec::as_slice).collect();
        let biases: Vec<&[f64]> = self.biases.iter().map(Vec::as_slice).collect();
        f(&Folded {
            config: self.config,
            embedding: &self.embedding,
            weights: &weights,
            biases: &biases,
        })
    }

    /// The bytes of a folded model file of `dtype`: the contract's metadata plus `extra`
    /// (for example the checkpoint's `provenance.*` keys), tensors in the contract's order.
    /// Only q8 can fail: its integers must fit ([`Q8Weights::quantize`]).
    pub fn to_safetensors(
        &self,
        vocab: &Vocabulary,
        dtype: Dtype,
        extra: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, QuantizeError> {
        let q8 = (dtype == Dtype::Q8)
            .then(|| Q8Weights::quantize(self))
            .transpose()?;
        let mut metadata = extra.clone();
        for (key, value) in [
            (keys::FORMAT, format::FOLDED_FORMAT.to_string()),
            (keys::FORMAT_VERSION, format::FORMAT_VERSION.to_string()),
            (keys::BLOCK_SIZE, self.config.block_size().to_string()),
            (keys::EMBED_DIM, self.config.embed_dim().to_string()),
            (keys::HIDDEN, WidthList(self.config.hidden()).to_string()),
            (keys::VOCAB, vocab.to_string()),
            (keys::DTYPE, dtype.name().to_string()),
            (keys::WRITER, crate::WRITER.to_string()),
        ] {
            metadata.insert(key.to_string(), value);
        }
        let tensors: Vec<TensorBytes> = format::folded_tensors(&self.config, dtype)
            .map(|name| match &q8 {
                Some(q8) => self.tensor(name, name.storage(Some(dtype)), q8.tensor_bytes(name)),
                None => self.encode(name, dtype),
            })
            .collect();
        Ok(safetensors_file::encode(&metadata, &tensors))
    }

    /// A tensor's header entry around its bytes.
    fn tensor(&self, name: TensorName, storage: Storage, bytes: Vec<u8>) -> TensorBytes {
        TensorBytes {
            name: name.to_string(),
            dtype: storage.safetensors_name(),
            shape: name
                .shape(&self.config)
                .map(|s| s.dims().to_vec())
                .unwrap_or_default(),
            bytes,
        }
    }

    /// Refuses values that `dtype` (f32 for the vectors) cannot store: rounding them would
    /// give infinities. (q8 scales every row to fit; its integers are checked when quantised.)
    fn check_range(&self, dtype: Dtype) -> Result<(), ExportError> {
        if dtype == Dtype::Q8 {
            return Ok(());
        }
        for name in format::folded_tensors(&self.config, dtype) {
            let stored = name.dtype(Some(dtype));
            let (values, largest) = match (name, stored) {
                (TensorName::EmbeddingScale | TensorName::Scale(_), _) => continue,
                (TensorName::Embedding, _) => (&self.embedding, largest(stored)),
                (TensorName::Weight(i), _) => (&self.weights[i], largest(stored)),
                _ => (&self.biases[name.layer().unwrap_or(0)], largest(Dtype::F32)),
            };
            if let Some(&value) = values.iter().find(|v| v.abs() > largest) {
                return Err(ExportError::OutOfRange {
                    tensor: name.to_string(),
                    value,
                    dtype: stored,
                    largest,
                });
            }
        }
        Ok(())
    }

    /// One tensor of the folded file: matrices rounded to `dtype` (with per-row scales for
    /// i8), vectors as f32.
    fn encode(&self, name: TensorName, dtype: Dtype) -> TensorBytes {
        let (matrix, rows) = match name {
            TensorName::Embedding | TensorName::EmbeddingScale => {
                (&self.embedding, self.config.vocab_size())
            }
            TensorName::Weight(i) | TensorName::Scale(i) => {
                (&self.weights[i], self.biases[i].len())
            }
            // `folded_tensors` yields only biases besides the names above: one f32 row each.
            _ => (&self.biases[name.layer().unwrap_or(0)], 1),
        };
        let stored = name.dtype(Some(dtype));
        let cols = matrix.len() / rows;
        let bytes = match (name, stored) {
            (TensorName::EmbeddingScale | TensorName::Scale(_), _) => matrix
                .chunks_exact(cols)
                .flat_map(|row| format::i8_row_scale(row).to_le_bytes())
                .collect(),
            (_, Dtype::F32) => matrix
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            (_, Dtype::F16) => matrix
                .iter()
                .flat_map(|&v| f16::from_f64(v).to_le_bytes())
                .collect(),
            (_, Dtype::I8) => matrix
                .chunks_exact(cols)
                .flat_map(|row| {
                    let scale = format::i8_row_scale(row);
                    row.iter()
                        .map(move |&v| format::quantize_i8(v, scale) as u8)
                })
                .collect(),
            // `to_safetensors` encodes q8 from its `Q8Weights`, never here.
            (_, Dtype::Q8) => Vec::new(),
        };
        self.tensor(name, stored.storage(), bytes)
    }
}

/// The largest magnitude `dtype` stores without becoming infinite (i8 rows are scaled to fit,
/// their scale being f32).
fn largest(dtype: Dtype) -> f64 {
    match dtype {
        Dtype::F16 => f64::from(f16::MAX),
        _ => f64::from(f32::MAX),
    }
}

/// Why a checkpoint cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A BatchNorm cannot be folded (the checkpoint reader rejects most such files first).
    #[error("cannot fold: {0}")]
    Fold(#[from] LayerFoldError),
    /// The folded weights cannot be stored in f32 closely enough: rounding them moves some
    /// logit by more than the f32 bound (extreme gammas, tiny variances or huge means).
    #[error(
        "the folded model cannot be represented in f32: rounding moves a logit by {max_logit_diff:.3e}, \
         more than the bound {bound:e} (look for extreme BatchNorm gammas, near-zero running \
         variances or very large running means)"
    )]
    NotRepresentable {
        /// The largest logit difference measured.
        max_logit_diff: f64,
        /// The f32 bound.
        bound: f64,
    },
    /// A folded value does not fit the dtype (f16 holds magnitudes up to 65,504): the
    /// checkpoint's weights or BatchNorm statistics are too large for it.
    #[error(
        "the folded {tensor} holds {value:e}, which {dtype} cannot store (largest {largest:e}): \
         the checkpoint's weights or BatchNorm statistics are too large for {dtype}; export \
         another dtype"
    )]
    OutOfRange {
        /// The tensor.
        tensor: String,
        /// The value.
        value: f64,
        /// The dtype asked for.
        dtype: Dtype,
        /// The largest magnitude it holds.
        largest: f64,
    },
    /// The folded weights are so large that some context could drive a logit past what f32
    /// arithmetic holds, so the sampler refuses them: the checkpoint's doing, not the writer's.
    #[error(
        "the folded model's weights are too large to sample from ({0}): the checkpoint's \
         weights or BatchNorm statistics are extreme; retrain with a smaller learning rate"
    )]
    MayOverflow(namegen_sampler::LoadError),
    /// The folded model has no q8 form: some integer of the recipe does not fit.
    #[error("the folded model cannot be quantised to q8: {0}")]
    Quantize(#[from] QuantizeError),
    /// Some int8 input could overflow a q8 accumulator or give a logit beyond 2^24 (256
    /// nats), so the sampler refuses the file: the weights or biases are extreme.
    #[error(
        "the q8 model could overflow its int32 arithmetic ({0}): the checkpoint's weights or \
         BatchNorm statistics are extreme; export a float dtype"
    )]
    IntegerOverflow(namegen_sampler::LoadError),
    /// The sampler refused the file just written for any other reason: a bug in the writer,
    /// never the user's.
    #[error("internal error: the written model does not load: {0}")]
    SelfCheck(namegen_sampler::LoadError),
}

/// A folded model file ready to be written, with what the export measured.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// max |logit difference| between the unfolded model (f64 reference pass) and this file
    /// run by the sampler's forward pass, over [`ExportCheck::contexts`].
    pub check: ExportCheck,
}

/// The export's own check of the written bytes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportCheck {
    /// max |logit difference| against the unfolded f64 reference.
    pub max_logit_diff: f64,
    /// Contexts compared.
    pub contexts: usize,
    /// Whether they were every possible context.
    pub exhaustive: bool,
}

/// The checkpoint's `provenance.*` metadata, which the folded model carries on (its own
/// `provenance.writer` is this program).
pub fn provenance(checkpoint: &Checkpoint) -> BTreeMap<String, String> {
    checkpoint
        .extra
        .iter()
        .filter(|(key, _)| key.starts_with(keys::PROVENANCE_PREFIX) && key.as_str() != keys::WRITER)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Folds `checkpoint`, encodes it as `dtype` (q8: quantised as [`crate::q8`] describes), and
/// checks the bytes through the sampler: they must load (for q8: every rule of the loader,
/// codes, multipliers, shifts and the int32 overflow bound), and in f32 every logit must stay
/// within [`Bound::for_dtype`] of the unfolded model on every context, or the export is
/// refused. The largest logit difference is measured for every dtype.
///
/// [`Bound::for_dtype`]: crate::verify::Bound::for_dtype
pub fn export(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Exported, ExportError> {
    let mut unfolded = UnfoldedWeights::new(checkpoint);
    let folded = unfolded.with_reference(FoldedWeights::fold)?;
    folded.check_range(dtype)?;
    let bytes = folded.to_safetensors(&checkpoint.vocab, dtype, &provenance(checkpoint))?;
    let view = namegen_sampler::ModelView::parse(&bytes).map_err(|e| match e {
        namegen_sampler::LoadError::MayOverflow { .. } => ExportError::MayOverflow(e),
        namegen_sampler::LoadError::IntegerOverflow { .. } => ExportError::IntegerOverflow(e),
        e => ExportError::SelfCheck(e),
    })?;
    let config = checkpoint.config;
    let contexts = ContextSet::new(config.vocab_size(), config.block_size(), 0);
    let mut a = vec![0.0; contexts.len() * config.vocab_size()];
    let mut b = a.clone();
    unfolded.logits(&contexts.ids, &mut a);
    SamplerLogits::new(&view).logits(&contexts.ids, &mut b);
    let max_logit_diff = a
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    // NaN fails the bound too.
    let within = |bound: f64| max_logit_diff <= bound;
    if let (Dtype::F32, Bound::MaxLogitDiff(bound)) = (dtype, Bound::for_dtype(dtype))
        && !within(bound)
    {
        return Err(ExportError::NotRepresentable {
            max_logit_diff,
            bound,
        });
    }
    let check = ExportCheck {
        max_logit_diff,
        contexts: contexts.len(),
        exhaustive: contexts.exhaustive,
    };
    Ok(Exported { bytes, check })
}
