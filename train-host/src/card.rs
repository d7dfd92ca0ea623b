//! The model card: a short JSON file next to a folded model that says what it is (config,
//! parameter count, bytes per dtype, losses, provenance) and how it was checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use namegen_model::Dtype;
use namegen_model::format::keys;
use serde::{Deserialize, Serialize};

use crate::export::{ExportCheck, FoldedWeights, UnfoldedWeights, provenance};
use crate::verify::Report;
use namegen_files::checkpoint::Checkpoint;
use namegen_files::input::{ReadError, read_bounded};

/// The largest card read: a card is a few kilobytes.
const MAX_CARD_BYTES: u64 = 1 << 20;

/// `model.safetensors` -> `model.card.json`.
pub fn path_for(model: &Path) -> PathBuf {
    model.with_extension("card.json")
}

/// What the card holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// The model file's name.
    pub model: String,
    /// How its weights are stored.
    pub dtype: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// Sizes the same model has in every dtype.
    pub bytes_per_dtype: BTreeMap<String, usize>,
    /// Architecture: block size, embedding width, hidden widths, vocabulary.
    pub config: BTreeMap<String, String>,
    /// Trainable parameters before folding, and numbers stored after.
    pub parameters: BTreeMap<String, usize>,
    /// The checkpoint's provenance (steps, seed, backend, val loss, dataset hash, ...).
    pub provenance: BTreeMap<String, String>,
    /// The export's check against the unfolded f64 reference.
    pub export_check: ExportCheck,
    /// `namegen verify`'s figures, once it has run with `--card`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verification: Option<Report>,
}

impl ModelCard {
    /// The card of the model exported from `checkpoint` to `path` in `dtype`.
    pub fn new(
        checkpoint: &Checkpoint,
        path: &Path,
        dtype: Dtype,
        bytes: usize,
        check: ExportCheck,
    ) -> Self {
        let config = checkpoint.config;
        let folded = UnfoldedWeights::new(checkpoint)
            .with_reference(FoldedWeights::fold)
            .ok();
        // This file's own size as written; the others' as the same fold would write them.
        let mut bytes_per_dtype: BTreeMap<String, usize> = Dtype::FLOAT
            .into_iter()
            .filter(|&d| d != dtype)
            .filter_map(|d| {
                let file = folded
                    .as_ref()?
                    .to_safetensors(&checkpoint.vocab, d, &provenance(checkpoint))
                    .ok()?;
                Some((d.name().to_string(), file.len()))
            })
            .collect();
        bytes_per_dtype.insert(dtype.name().to_string(), bytes);
        let text = |v: &dyn ToString| v.to_string();
        Self {
            model: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dtype: dtype.name().to_string(),
            bytes,
            bytes_per_dtype,
            config: [
                ("block_size", text(&config.block_size())),
                ("embed_dim", text(&config.embed_dim())),
                (
                    "hidden",
                    text(&namegen_model::config::WidthList(config.hidden())),
                ),
                ("vocab", checkpoint.vocab.to_string()),
                ("vocab_size", text(&config.vocab_size())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            parameters: [
                (
                    "unfolded_trainable".to_string(),
                    config.unfolded_parameters(),
                ),
                ("folded".to_string(), config.folded_parameters()),
            ]
            .into(),
            provenance: checkpoint
                .extra
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.strip_prefix(keys::PROVENANCE_PREFIX)?.to_string(),
                        v.clone(),
                    ))
                })
                .collect(),
            export_check: check,
            verification: None,
        }
    }

    /// Reads a card written by [`ModelCard::to_bytes`].
    pub fn load(path: &Path) -> Result<Self, ReadError> {
        let bytes = read_bounded(path, MAX_CARD_BYTES, "model card")?;
        serde_json::from_slice(&bytes).map_err(|e| ReadError::Io {
            what: "model card",
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Adds `namegen verify`'s figures.
    pub fn set_verification(&mut self, report: &Report) {
        self.verification = Some(report.clone());
    }

    /// The card's file: pretty-printed JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        (serde_json::to_string_pretty(self).unwrap_or_default() + "\n").into_bytes()
    }
}
