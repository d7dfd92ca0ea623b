//! The two file formats: the unfolded checkpoint and the folded model. Both are
//! [safetensors](https://github.com/huggingface/safetensors) files; this module names their
//! tensors, shapes, dtypes and metadata keys, and `model/FORMAT.md` (included below) is the
//! full specification with a PyTorch writer and a numpy reader.
#![doc = include_str!("../FORMAT.md")]

use core::fmt;

use crate::config::{ConfigError, MAX_HIDDEN_LAYERS, ModelConfig};

/// `format` of an unfolded checkpoint.
pub const UNFOLDED_FORMAT: &str = "namegen-unfolded";
/// `format` of a folded model.
pub const FOLDED_FORMAT: &str = "namegen-folded";
/// `format_version` written and accepted by this version of the contract.
pub const FORMAT_VERSION: &str = "1";

/// The largest file either format can be: every limit of [`crate::config`] at its maximum
/// (the widest embedding, every hidden layer `MAX_WIDTH` wide, the largest vocabulary), every
/// tensor f32, and a 1 MiB header. A host refuses a larger file before reading it.
pub const MAX_FILE_BYTES: u64 = {
    use crate::config::MAX_WIDTH;
    use crate::vocab::MAX_VOCAB;
    let (width, layers, vocab) = (MAX_WIDTH as u64, MAX_HIDDEN_LAYERS as u64, MAX_VOCAB as u64);
    let embedding = vocab * width;
    let weights = width * width * layers + width * vocab;
    // gamma, beta, running mean and running variance: more than a folded model's biases.
    let batchnorm = 4 * (width * layers + vocab);
    4 * (embedding + weights + batchnorm) + (1 << 20)
};

/// The `__metadata__` keys. Every value is a string, as safetensors requires.
pub mod keys {
    /// [`super::UNFOLDED_FORMAT`] or [`super::FOLDED_FORMAT`].
    pub const FORMAT: &str = "format";
    /// [`super::FORMAT_VERSION`].
    pub const FORMAT_VERSION: &str = "format_version";
    /// Symbols of context, decimal.
    pub const BLOCK_SIZE: &str = "block_size";
    /// Embedding width, decimal.
    pub const EMBED_DIM: &str = "embed_dim";
    /// Hidden widths, decimal, comma-separated: `100,100,100,100,100`.
    pub const HIDDEN: &str = "hidden";
    /// The vocabulary's symbols in index order, `.` first: `.abcdefghijklmnopqrstuvwxyz`.
    pub const VOCAB: &str = "vocab";
    /// Unfolded only: the BatchNorm epsilon shared by every layer, a decimal float (`1e-05`).
    pub const BN_EPS: &str = "bn_eps";
    /// Folded only: [`super::Dtype::name`] of the weights.
    pub const DTYPE: &str = "dtype";
    /// Prefix of the optional keys that say where the weights come from, carried from a
    /// checkpoint into the models exported from it.
    pub const PROVENANCE_PREFIX: &str = "provenance.";
    /// Optional: training steps behind the weights.
    pub const STEPS: &str = "provenance.steps";
    /// Optional: the training seed.
    pub const SEED: &str = "provenance.seed";
    /// Optional: the burn backend that trained the weights.
    pub const BACKEND: &str = "provenance.backend";
    /// Optional: validation loss of the unfolded model in eval mode.
    pub const VAL_LOSS: &str = "provenance.val_loss";
    /// Optional: sha256 (hex) of the names file trained on.
    pub const DATASET_SHA256: &str = "provenance.dataset_sha256";
    /// Optional: the program and version that wrote the file.
    pub const WRITER: &str = "provenance.writer";
    /// Unfolded, optional: training steps done, decimal (the trainer's resume state; readers
    /// other than the trainer ignore the `train.*` keys).
    pub const TRAIN_STEP: &str = "train.step";
    /// Unfolded, optional: the training PRNG's (PCG32) state, decimal.
    pub const TRAIN_RNG_STATE: &str = "train.rng_state";
    /// Unfolded, optional: the training PRNG's increment (stream), decimal.
    pub const TRAIN_RNG_INCREMENT: &str = "train.rng_increment";
    /// Unfolded, optional: prefix of the training recipe's values (`train.recipe.lr`, ...).
    pub const TRAIN_RECIPE_PREFIX: &str = "train.recipe.";
    /// Unfolded, optional: the seed of the train / validation / test split trained on.
    pub const TRAIN_SPLIT_SEED: &str = "train.recipe.split_seed";
}

/// How the folded model's embedding and Linear weights are stored, and so how it computes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// Signed bytes, each row times its own f32 scale.
    I8,
    /// Integer-only inference: int8 embedding codes, int8 weights, int32 accumulators
    /// requantised per row by a 16-bit multiplier and a shift, a shared int8 `tanh` table,
    /// and Q16 int32 logits (`model/FORMAT.md`, [`crate::q8`]). No float until the logits.
    Q8,
}

impl Dtype {
    /// Every dtype a folded model may have, widest first: the ones [`Dtype::FLOAT`] lists,
    /// then [`Dtype::Q8`]. The pipeline exports and verifies each, and every device program
    /// takes each (where it fits).
    pub const ALL: [Dtype; 4] = [Dtype::F32, Dtype::F16, Dtype::I8, Dtype::Q8];

    /// The dtypes that compute in f32 (float weights, or i8 weights times f32 scales), widest
    /// first: [`Dtype::ALL`] without [`Dtype::Q8`], whose layers compute in integers. Their
    /// logits follow the f64 reference forward pass within rounding; q8's follow its own
    /// integer arithmetic (`model/FORMAT.md`).
    pub const FLOAT: [Dtype; 3] = [Dtype::F32, Dtype::F16, Dtype::I8];

    /// The metadata and command-line name: `f32`, `f16`, `i8`, `q8`.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::I8 => "i8",
            Dtype::Q8 => "q8",
        }
    }

    /// The safetensors header name of the embedding and the Linear weights: `F32`, `F16`,
    /// `I8` (`I8` for q8 too).
    pub const fn safetensors_name(self) -> &'static str {
        self.storage().safetensors_name()
    }

    /// Bytes per element of the embedding and the Linear weights.
    pub const fn size(self) -> usize {
        self.storage().size()
    }

    /// How the embedding and the Linear weights are stored.
    pub const fn storage(self) -> Storage {
        match self {
            Dtype::F32 => Storage::F32,
            Dtype::F16 => Storage::F16,
            Dtype::I8 | Dtype::Q8 => Storage::I8,
        }
    }

    /// Parses [`Dtype::name`], of any dtype in [`Dtype::ALL`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The dtype of [`Dtype::FLOAT`] whose weights are stored as [`Dtype::safetensors_name`]
    /// `name` (`I8` is [`Dtype::I8`]).
    pub fn from_safetensors_name(name: &str) -> Option<Self> {
        Self::FLOAT
            .into_iter()
            .find(|d| d.safetensors_name() == name)
    }
}

/// How one tensor's elements are stored: the safetensors dtypes the formats use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Storage {
    /// IEEE 754 binary32, little-endian.
    F32,
    /// IEEE 754 binary16, little-endian.
    F16,
    /// Signed bytes.
    I8,
    /// Two's complement 16-bit integers, little-endian.
    I16,
    /// Two's complement 32-bit integers, little-endian.
    I32,
}

impl Storage {
    /// The safetensors header name: `F32`, `F16`, `I8`, `I16`, `I32`.
    pub const fn safetensors_name(self) -> &'static str {
        match self {
            Storage::F32 => "F32",
            Storage::F16 => "F16",
            Storage::I8 => "I8",
            Storage::I16 => "I16",
            Storage::I32 => "I32",
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Storage::F32 | Storage::I32 => 4,
            Storage::F16 | Storage::I16 => 2,
            Storage::I8 => 1,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every tensor either file may hold. Layer numbers count Linear layers from 0; the last is
/// the output layer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TensorName {
    /// `emb.weight`: `[vocab, embed_dim]`, both files.
    Embedding,
    /// `emb.scale`: `[vocab]` f32, folded i8 only.
    EmbeddingScale,
    /// `layers.{i}.weight`: `[out, in]`, both files.
    Weight(usize),
    /// `layers.{i}.bias`: `[out]` f32, folded float dtypes only (q8 stores
    /// [`TensorName::BiasShift`]).
    Bias(usize),
    /// `layers.{i}.scale`: `[out]` f32, folded i8 only.
    Scale(usize),
    /// `layers.{i}.bias_shift`: `[out]` i32, folded q8 only: each row's bias and shift in one
    /// word ([`crate::q8::bias_shift`]).
    BiasShift(usize),
    /// `layers.{i}.multiplier`: `[out]` i16, folded q8 only.
    Multiplier(usize),
    /// `tanh.table`: `[256]` i8, folded q8 only: every hidden layer's activation.
    TanhTable,
    /// `layers.{i}.bn.gamma`: `[out]` f32, unfolded only.
    BnGamma(usize),
    /// `layers.{i}.bn.beta`: `[out]` f32, unfolded only.
    BnBeta(usize),
    /// `layers.{i}.bn.running_mean`: `[out]` f32, unfolded only.
    BnRunningMean(usize),
    /// `layers.{i}.bn.running_var`: `[out]` f32, unfolded only.
    BnRunningVar(usize),
}

/// Builds a layer tensor's name from its layer number.
type LayerTensor = fn(usize) -> TensorName;

const LAYER_SUFFIXES: [(&str, LayerTensor); 9] = [
    ("weight", TensorName::Weight),
    ("bias", TensorName::Bias),
    ("scale", TensorName::Scale),
    ("bias_shift", TensorName::BiasShift),
    ("multiplier", TensorName::Multiplier),
    ("bn.gamma", TensorName::BnGamma),
    ("bn.beta", TensorName::BnBeta),
    ("bn.running_mean", TensorName::BnRunningMean),
    ("bn.running_var", TensorName::BnRunningVar),
];

impl TensorName {
    /// Parses a tensor name; `None` for anything the formats do not define (including layer
    /// numbers past [`MAX_HIDDEN_LAYERS`] and numbers with leading zeros).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "emb.weight" => return Some(Self::Embedding),
            "emb.scale" => return Some(Self::EmbeddingScale),
            "tanh.table" => return Some(Self::TanhTable),
            _ => {}
        }
        let rest = name.strip_prefix("layers.")?;
        let (number, suffix) = rest.split_once('.')?;
        let canonical = number == "0" || !number.starts_with('0');
        let layer: usize = number.parse().ok().filter(|_| canonical)?;
        if layer > MAX_HIDDEN_LAYERS || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        LAYER_SUFFIXES
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|(_, make)| make(layer))
    }

    /// The Linear layer this tensor belongs to, if any.
    pub const fn layer(self) -> Option<usize> {
        match self {
            Self::Embedding | Self::EmbeddingScale | Self::TanhTable => None,
            Self::Weight(i)
            | Self::Bias(i)
            | Self::Scale(i)
            | Self::BiasShift(i)
            | Self::Multiplier(i)
            | Self::BnGamma(i)
            | Self::BnBeta(i)
            | Self::BnRunningMean(i)
            | Self::BnRunningVar(i) => Some(i),
        }
    }

    /// The shape this tensor must have under `config`; `None` when the layer does not exist.
    pub fn shape(self, config: &ModelConfig) -> Option<Shape> {
        match self {
            Self::Embedding => Some(Shape::matrix(config.vocab_size(), config.embed_dim())),
            Self::EmbeddingScale => Some(Shape::vector(config.vocab_size())),
            Self::TanhTable => Some(Shape::vector(crate::q8::TANH_TABLE_LEN)),
            Self::Weight(i) => config.layer_dims(i).map(|(i, o)| Shape::matrix(o, i)),
            Self::Bias(i)
            | Self::Scale(i)
            | Self::BiasShift(i)
            | Self::Multiplier(i)
            | Self::BnGamma(i)
            | Self::BnBeta(i)
            | Self::BnRunningMean(i)
            | Self::BnRunningVar(i) => config.layer_dims(i).map(|(_, o)| Shape::vector(o)),
        }
    }

    /// The dtype this tensor is stored in, in a folded model of a float dtype `dtype` (one of
    /// [`Dtype::FLOAT`]: matrices in `dtype`, vectors in f32) or, for `None`, in an unfolded
    /// checkpoint (everything f32): what the exporter encodes. [`TensorName::storage`] says
    /// it for every dtype, q8's int32 and int8 vectors included.
    pub const fn dtype(self, folded: Option<Dtype>) -> Dtype {
        match (self, folded) {
            (Self::Embedding | Self::Weight(_), Some(dtype)) => dtype,
            _ => Dtype::F32,
        }
    }

    /// How this tensor's elements are stored in a folded model of `dtype` or, for `None`, in
    /// an unfolded checkpoint (everything f32): the matrices as [`Dtype::storage`], the
    /// vectors in f32, except q8's (int32 biases with shifts, int16 multipliers, int8 table).
    pub const fn storage(self, folded: Option<Dtype>) -> Storage {
        match (self, folded) {
            (Self::Embedding | Self::Weight(_), Some(dtype)) => dtype.storage(),
            (Self::BiasShift(_), Some(Dtype::Q8)) => Storage::I32,
            (Self::Multiplier(_), Some(Dtype::Q8)) => Storage::I16,
            (Self::TanhTable, Some(Dtype::Q8)) => Storage::I8,
            _ => Storage::F32,
        }
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedding => f.write_str("emb.weight"),
            Self::EmbeddingScale => f.write_str("emb.scale"),
            Self::Weight(i) => write!(f, "layers.{i}.weight"),
            Self::Bias(i) => write!(f, "layers.{i}.bias"),
            Self::Scale(i) => write!(f, "layers.{i}.scale"),
            Self::BiasShift(i) => write!(f, "layers.{i}.bias_shift"),
            Self::Multiplier(i) => write!(f, "layers.{i}.multiplier"),
            Self::TanhTable => f.write_str("tanh.table"),
            Self::BnGamma(i) => write!(f, "layers.{i}.bn.gamma"),
            Self::BnBeta(i) => write!(f, "layers.{i}.bn.beta"),
            Self::BnRunningMean(i) => write!(f, "layers.{i}.bn.running_mean"),
            Self::BnRunningVar(i) => write!(f, "layers.{i}.bn.running_var"),
        }
    }
}

/// The tensors of an unfolded checkpoint under `config`, in file order.
pub fn unfolded_tensors(config: &ModelConfig) -> impl Iterator<Item = TensorName> + '_ {
    let layers = (0..config.n_layers()).flat_map(|i| {
        [
            TensorName::Weight(i),
            TensorName::BnGamma(i),
            TensorName::BnBeta(i),
            TensorName::BnRunningMean(i),
            TensorName::BnRunningVar(i),
        ]
    });
    core::iter::once(TensorName::Embedding).chain(layers)
}

/// The tensors of a folded model of `dtype` under `config`, in file order: the embedding
/// (and its scales for i8; then the `tanh` table for q8), then per layer its weight (and
/// scales for i8), its bias (for q8 its biases with shifts, then its multipliers).
pub fn folded_tensors(config: &ModelConfig, dtype: Dtype) -> impl Iterator<Item = TensorName> + '_ {
    let (scaled, integer) = (dtype == Dtype::I8, dtype == Dtype::Q8);
    let embedding = [
        Some(TensorName::Embedding),
        scaled.then_some(TensorName::EmbeddingScale),
        integer.then_some(TensorName::TanhTable),
    ];
    let layers = (0..config.n_layers()).flat_map(move |i| {
        [
            Some(TensorName::Weight(i)),
            scaled.then_some(TensorName::Scale(i)),
            Some(if integer {
                TensorName::BiasShift(i)
            } else {
                TensorName::Bias(i)
            }),
            integer.then_some(TensorName::Multiplier(i)),
        ]
    });
    embedding.into_iter().chain(layers).flatten()
}

/// The symmetric int8 scale of `values`: `max |v| / 127`, or 1 when that is not a finite,
/// positive number (all zeros). i8 files store it rounded to f32 ([`i8_row_scale`]); q8 keeps
/// it in f64 and folds it into the requantisation multipliers.
pub fn symmetric_scale(values: &[f64]) -> f64 {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 127.0;
    if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    }
}

/// `round(value / scale)` (ties away from zero), clamped to the symmetric `-127..=127` the
/// loader accepts: the int8 code of `value` at `scale`, for i8 and q8 alike.
pub fn quantize_symmetric(value: f64, scale: f64) -> i8 {
    libm::round(value / scale).clamp(-127.0, 127.0) as i8
}

/// The stored f32 scale of one row of a folded i8 matrix, as FORMAT.md specifies:
/// [`symmetric_scale`] rounded to f32, or 1 if that is not a finite, positive f32. Every
/// writer of i8 files uses this, so they all agree with the loader's rules (finite, positive
/// scales).
pub fn i8_row_scale(row: &[f64]) -> f32 {
    let scale = symmetric_scale(row) as f32;
    if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    }
}

/// The stored i8 of `value` in a row whose stored scale is `scale` (from [`i8_row_scale`]):
/// [`quantize_symmetric`] at that scale. Dividing by the stored f32 scale, not the exact f64
/// one, keeps `q * scale` as close to `value` as the file can say.
pub fn quantize_i8(value: f64, scale: f32) -> i8 {
    quantize_symmetric(value, f64::from(scale))
}

/// A tensor's shape: a vector `[n]` or a matrix `[rows, cols]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    dims: [usize; 2],
    rank: usize,
}

impl Shape {
    /// `[len]`.
    pub const fn vector(len: usize) -> Self {
        Self {
            dims: [len, 1],
            rank: 1,
        }
    }

    /// `[rows, cols]`.
    pub const fn matrix(rows: usize, cols: usize) -> Self {
        Self {
            dims: [rows, cols],
            rank: 2,
        }
    }

    /// The dimensions, as a safetensors header lists them.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Number of elements.
    pub const fn elements(&self) -> usize {
        self.dims[0] * self.dims[1]
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

/// Why the config in a file's metadata cannot be read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MetadataError {
    /// The value of this key is not a decimal number (or list of them).
    NotANumber {
        /// The metadata key.
        key: &'static str,
    },
    /// The numbers parse but do not make a valid config.
    Config(ConfigError),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber { key } => {
                write!(
                    f,
                    "metadata {key:?} is not a decimal number or a list of them"
                )
            }
            Self::Config(e) => write!(f, "metadata describes an invalid model: {e}"),
        }
    }
}

impl core::error::Error for MetadataError {}

impl MetadataError {
    /// The metadata key whose value is at fault, for messages that name it.
    pub const fn key(&self) -> &'static str {
        match self {
            Self::NotANumber { key } => key,
            Self::Config(ConfigError::BlockSize(_)) => keys::BLOCK_SIZE,
            Self::Config(ConfigError::EmbedDim(_)) => keys::EMBED_DIM,
            Self::Config(ConfigError::VocabSize(_)) => keys::VOCAB,
            Self::Config(ConfigError::HiddenLayers(_) | ConfigError::HiddenWidth { .. }) => {
                keys::HIDDEN
            }
        }
    }
}

impl From<ConfigError> for MetadataError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// Builds the config from the metadata values of [`keys::BLOCK_SIZE`], [`keys::EMBED_DIM`]
/// and [`keys::HIDDEN`], and the vocabulary's size.
pub fn parse_config(
    block_size: &str,
    embed_dim: &str,
    hidden: &str,
    vocab_size: usize,
) -> Result<ModelConfig, MetadataError> {
    let block_size = parse_number(block_size, keys::BLOCK_SIZE)?;
    let embed_dim = parse_number(embed_dim, keys::EMBED_DIM)?;
    let mut widths = [0; MAX_HIDDEN_LAYERS];
    let mut count = 0;
    for part in hidden.split(',') {
        if count == MAX_HIDDEN_LAYERS {
            return Err(ConfigError::HiddenLayers(count + 1).into());
        }
        widths[count] = parse_number(part, keys::HIDDEN)?;
        count += 1;
    }
    Ok(ModelConfig::new(
        block_size,
        embed_dim,
        &widths[..count],
        vocab_size,
    )?)
}

fn parse_number(text: &str, key: &'static str) -> Result<usize, MetadataError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let value = text.parse().ok().filter(|_| digits);
    value.ok_or(MetadataError::NotANumber { key })
}
