//! The unfolded checkpoint (`model/FORMAT.md`, `format` = `namegen-unfolded`): reading it
//! with every check the contract asks for, and its bytes for [`crate::output::Outputs::write`].
//!
//! Keys beyond the contract's (`provenance.*`, and the trainer's resume state under
//! `train.*`) travel in [`Checkpoint::extra`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use namegen_model::format::{self, TensorName, keys, unfolded_tensors};
use namegen_model::{ModelConfig, Vocabulary};
use safetensors::{Dtype, SafeTensors};

use crate::input::{ReadError, read_bounded};
use crate::safetensors_file::TensorBytes;

/// Why a checkpoint cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read, or is larger than any checkpoint.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The bytes are not a valid safetensors file.
    #[error("{path}: not a safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader said.
        reason: String,
    },
    /// A metadata key is missing or holds a value the contract does not allow.
    #[error("{path}: metadata {key:?}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor is missing, unexpected, or has the wrong dtype, shape or values.
    #[error("{path}: tensor {name:?}: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// One Linear layer and the BatchNorm after it, as f32 in the file's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// `[out, in]`, row-major.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub gamma: Vec<f32>,
    /// `[out]`.
    pub beta: Vec<f32>,
    /// `[out]`.
    pub running_mean: Vec<f32>,
    /// `[out]`, every value >= 0.
    pub running_var: Vec<f32>,
}

/// Everything an unfolded checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The architecture.
    pub config: ModelConfig,
    /// The symbols; its length is `config.vocab_size()`.
    pub vocab: Vocabulary,
    /// The BatchNorm epsilon of every layer.
    pub bn_eps: f64,
    /// `[vocab, embed_dim]`, row-major.
    pub embedding: Vec<f32>,
    /// One per Linear layer, the output layer last.
    pub layers: Vec<LayerWeights>,
    /// Metadata beyond the contract's required keys: `provenance.*` and `train.*`.
    pub extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads and fully validates the checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = read_bounded(path, format::MAX_FILE_BYTES, "checkpoint")?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses and validates checkpoint bytes; `path` only labels the errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, CheckpointError> {
        let safetensors_error = |e: safetensors::SafeTensorError| CheckpointError::Safetensors {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(safetensors_error)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(safetensors_error)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let meta_error = |key: &str, reason: String| CheckpointError::Metadata {
            path: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let get = |key: &str| {
            metadata
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| meta_error(key, "missing".into()))
        };
        if get(keys::FORMAT)? != format::UNFOLDED_FORMAT {
            return Err(meta_error(
                keys::FORMAT,
                format!("is not {:?}", format::UNFOLDED_FORMAT),
            ));
        }
        if get(keys::FORMAT_VERSION)? != format::FORMAT_VERSION {
            return Err(meta_error(
                keys::FORMAT_VERSION,
                format!("only version {} is supported", format::FORMAT_VERSION),
            ));
        }
        let vocab = Vocabulary::from_symbols(get(keys::VOCAB)?)
            .map_err(|e| meta_error(keys::VOCAB, e.to_string()))?;
        let config = format::parse_config(
            get(keys::BLOCK_SIZE)?,
            get(keys::EMBED_DIM)?,
            get(keys::HIDDEN)?,
            vocab.len(),
        )
        .map_err(|e| meta_error(e.key(), e.to_string()))?;
        let bn_eps: f64 = get(keys::BN_EPS)?
            .parse()
            .ok()
            .filter(|eps: &f64| eps.is_finite() && *eps > 0.0)
            .ok_or_else(|| meta_error(keys::BN_EPS, "not a positive decimal number".into()))?;

        let expected: Vec<TensorName> = unfolded_tensors(&config).collect();
        let tensor_error = |name: &str, reason: String| CheckpointError::Tensor {
            path: path.to_owned(),
            name: name.to_owned(),
            reason,
        };
        for name in tensors.names() {
            if !expected.iter().any(|t| t.to_string() == name) {
                return Err(tensor_error(
                    name,
                    "not part of an unfolded checkpoint".into(),
                ));
            }
        }
        let read = |tensor: TensorName| -> Result<Vec<f32>, CheckpointError> {
            let name = tensor.to_string();
            let view = tensors
                .tensor(&name)
                .map_err(|_| tensor_error(&name, "missing".into()))?;
            if view.dtype() != Dtype::F32 {
                return Err(tensor_error(
                    &name,
                    format!("dtype {} is not F32", view.dtype()),
                ));
            }
            let shape = tensor
                .shape(&config)
                .ok_or_else(|| tensor_error(&name, "layer does not exist".into()))?;
            if view.shape() != shape.dims() {
                return Err(tensor_error(
                    &name,
                    format!("shape {:?} is not {shape}", view.shape()),
                ));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(at) = values.iter().position(|v| !v.is_finite()) {
                return Err(tensor_error(&name, format!("value {at} is not finite")));
            }
            if matches!(tensor, TensorName::BnRunningVar(_)) && values.iter().any(|&v| v < 0.0) {
                return Err(tensor_error(&name, "a running variance is negative".into()));
            }
            Ok(values)
        };
        let embedding = read(TensorName::Embedding)?;
        let layers = (0..config.n_layers())
            .map(|i| {
                Ok(LayerWeights {
                    weight: read(TensorName::Weight(i))?,
                    gamma: read(TensorName::BnGamma(i))?,
                    beta: read(TensorName::BnBeta(i))?,
                    running_mean: read(TensorName::BnRunningMean(i))?,
                    running_var: read(TensorName::BnRunningVar(i))?,
                })
            })
            .collect::<Result<_, CheckpointError>>()?;
        let required = [
            keys::FORMAT,
            keys::FORMAT_VERSION,
            keys::BLOCK_SIZE,
            keys::EMBED_DIM,
            keys::HIDDEN,
            keys::VOCAB,
            keys::BN_EPS,
        ];
        let extra = metadata
            .into_iter()
            .filter(|(k, _)| !required.contains(&k.as_str()))
            .collect();
        Ok(Self {
            config,
            vocab,
            bn_eps,
            embedding,
            layers,
            extra,
        })
    }

    /// The file's bytes: tensors in the contract's order, little-endian f32, in the
    /// reproducible layout of [`crate::safetensors_file`], so the same checkpoint is always
    /// the same bytes. [`Checkpoint::load`] reads it back through the `safetensors` crate.
    pub fn to_bytes(&self) -> Vec<u8> {
        let config = &self.config;
        let mut metadata = self.extra.clone();
        let hidden = format!("{}", namegen_model::config::WidthList(config.hidden()));
        for (key, value) in [
            (keys::FORMAT, format::UNFOLDED_FORMAT.to_owned()),
            (keys::FORMAT_VERSION, format::FORMAT_VERSION.to_owned()),
            (keys::BLOCK_SIZE, config.block_size().to_string()),
            (keys::EMBED_DIM, config.embed_dim().to_string()),
            (keys::HIDDEN, hidden),
            (keys::VOCAB, self.vocab.to_string()),
            (keys::BN_EPS, format!("{:?}", self.bn_eps)),
        ] {
            metadata.insert(key.to_owned(), value);
        }
        let tensors: Vec<TensorBytes> = unfolded_tensors(config)
            .map(|tensor| {
                let values = match tensor {
                    TensorName::Weight(i) => &self.layers[i].weight,
                    TensorName::BnGamma(i) => &self.layers[i].gamma,
                    TensorName::BnBeta(i) => &self.layers[i].beta,
                    TensorName::BnRunningMean(i) => &self.layers[i].running_mean,
                    TensorName::BnRunningVar(i) => &self.layers[i].running_var,
                    // `unfolded_tensors` yields only the embedding besides the names above.
                    _ => &self.embedding,
                };
                TensorBytes {
                    name: tensor.to_string(),
                    dtype: "F32",
                    shape: tensor
                        .shape(config)
                        .map(|s| s.dims().to_vec())
                        .unwrap_or_default(),
                    bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                }
            })
            .collect();
        crate::safetensors_file::encode(&metadata, &tensors)
    }
}
