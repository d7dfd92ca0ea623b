//! Reading and cleaning a names file, and turning it into the train / val / test examples.
//!
//! The reader accepts what text editors and other tools produce: a UTF-8 byte-order mark,
//! CRLF or LF line ends, blank lines (skipped and counted) and spaces around a name (trimmed).
//! Anything that cannot be a name stops the run with an error that names the file and the
//! line: a `.` inside a name (it is the end-of-name symbol), a control character, bytes that
//! are not UTF-8, or a character that would push the vocabulary past its maximum. A file with
//! no names, or too few for an 80/10/10 split, is an error too, and so is a file larger than
//! [`MAX_FILE_BYTES`].

use std::path::{Path, PathBuf};

use namegen_model::split::{MIN_NAMES, TooFewNames};
use namegen_model::vocab::VocabError;
use namegen_model::{Part, SplitSizes, Vocabulary, windows};
use sha2::{Digest, Sha256};

use crate::input::{ReadError, read_bounded};

/// The largest names file read: 64 MiB, about 280 times the 32,033 names of makemore's
/// `names.txt`; a larger file (or an endless one) is refused before it fills memory.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a names file cannot be used for training.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file is missing, unreadable, or larger than [`MAX_FILE_BYTES`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A line is not valid UTF-8.
    #[error("{path}:{line}: not valid UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A line cannot be a name (a `.`, a control character, or a vocabulary overflow).
    #[error("{path}:{line}: name {name:?}: {reason}")]
    BadName {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending name, trimmed.
        name: String,
        /// What is wrong with it.
        reason: VocabError,
    },
    /// The file holds no names at all (it is empty or only blank lines).
    #[error("{path}: no names in the file ({lines} lines, all blank)")]
    Empty {
        /// The file.
        path: PathBuf,
        /// How many lines it had.
        lines: usize,
    },
    /// Too few names to give each part of the split at least one.
    #[error("{path}: {source}")]
    TooFew {
        /// The file.
        path: PathBuf,
        /// How many names there were.
        source: TooFewNames,
    },
}

/// A cleaned names file: the names in file order, their encodings, and the vocabulary.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where the names came from.
    pub path: PathBuf,
    /// The names, trimmed, in file order, blank lines dropped.
    pub names: Vec<String>,
    /// Each name as symbol indices of [`Dataset::vocab`].
    pub encoded: Vec<Vec<u8>>,
    /// [`namegen_model::vocab::END`] plus every character of the names, ascending.
    pub vocab: Vocabulary,
    /// Lines in the file.
    pub lines: usize,
    /// Lines skipped because they were blank (after trimming).
    pub skipped: usize,
    /// sha256 of the file's bytes, lower-case hex, for the model's provenance.
    pub sha256: String,
}

impl Dataset {
    /// Reads and checks `path`; see the module docs for what is accepted.
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let bytes = read_bounded(path, MAX_FILE_BYTES, "names file")?;
        Self::parse(path, &bytes)
    }

    /// Checks the bytes of a names file; `path` only labels the errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, DatasetError> {
        let sha256 = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut names = Vec::new();
        let mut vocab = Vocabulary::new();
        let (mut lines, mut skipped) = (0, 0);
        // A final line end does not start another (empty) line.
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
            if body.is_empty() {
                break;
            }
            let line = index + 1;
            lines = line;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw).map_err(|_| DatasetError::NotUtf8 {
                path: path.to_owned(),
                line,
            })?;
            let name = text.trim();
            if name.is_empty() {
                skipped += 1;
                continue;
            }
            let bad = |reason| DatasetError::BadName {
                path: path.to_owned(),
                line,
                name: name.to_owned(),
                reason,
            };
            vocab.add_name(name).map_err(bad)?;
            names.push(name.to_owned());
        }
        if names.is_empty() {
            return Err(DatasetError::Empty {
                path: path.to_owned(),
                lines,
            });
        }
        if names.len() < MIN_NAMES {
            return Err(DatasetError::TooFew {
                path: path.to_owned(),
                source: TooFewNames { names: names.len() },
            });
        }
        let encoded = names
            .iter()
            .map(|name| {
                name.chars()
                    .map(|c| vocab.encode(c).expect("every character was added above"))
                    .collect()
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            names,
            encoded,
            vocab,
            lines,
            skipped,
            sha256,
        })
    }
}

impl Dataset {
    /// The contract's split for `seed`: name indices in split order, and where each part lies.
    pub fn split_order(&self, seed: u64) -> Result<(Vec<u32>, SplitSizes), DatasetError> {
        let mut order = vec![0u32; self.names.len()];
        let sizes =
            namegen_model::split(&mut order, seed).map_err(|source| DatasetError::TooFew {
                path: self.path.clone(),
                source,
            })?;
        Ok((order, sizes))
    }

    /// The names of each part (train, val, test) in split order: what `namegen split` writes.
    pub fn split_names(&self, seed: u64) -> Result<[Vec<String>; 3], DatasetError> {
        let (order, sizes) = self.split_order(seed)?;
        Ok(Part::ALL.map(|part| {
            order[sizes.range(part)]
                .iter()
                .map(|&i| self.names[i as usize].clone())
                .collect()
        }))
    }
}

/// The examples of one part of the split: contexts and targets, row `i` of `contexts` being
/// the `block_size` symbols before target `i`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examples {
    /// `len * block_size` symbol indices, row-major.
    pub contexts: Vec<u8>,
    /// `len` target symbol indices.
    pub targets: Vec<u8>,
}

impl Examples {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// The three parts of the split as examples, in the order the split put the names.
#[derive(Debug, Clone)]
pub struct SplitExamples {
    /// 80 %: what the model learns from.
    pub train: Examples,
    /// 10 %: checked during and after training.
    pub val: Examples,
    /// 10 %: held out.
    pub test: Examples,
}

impl SplitExamples {
    /// Splits `dataset` with the contract's deterministic split for `seed` and windows every
    /// name with `block_size` symbols of context.
    pub fn new(dataset: &Dataset, seed: u64, block_size: usize) -> Result<Self, DatasetError> {
        let (order, sizes) = dataset.split_order(seed)?;
        let part = |part: Part| {
            let mut examples = Examples::default();
            for &name in &order[sizes.range(part)] {
                for (context, target) in windows(&dataset.encoded[name as usize], block_size) {
                    examples.contexts.extend_from_slice(context.ids());
                    examples.targets.push(target);
                }
            }
            examples
        };
        Ok(Self {
            train: part(Part::Train),
            val: part(Part::Val),
            test: part(Part::Test),
        })
    }

    /// The examples of one part.
    pub fn part(&self, part: Part) -> &Examples {
        match part {
            Part::Train => &self.train,
            Part::Val => &self.val,
            Part::Test => &self.test,
        }
    }
}
