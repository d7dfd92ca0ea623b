//! The contract every namegen crate shares: the vocabulary and its encoding, the architecture
//! config, context windowing, the pinned PRNG and the train/val/test split, the tensor names,
//! shapes, dtypes and metadata keys of both file formats ([`format`], and `FORMAT.md`), the
//! integer requantisation of the q8 dtype ([`q8`]), the BatchNorm fold arithmetic in f64, and
//! plain f64 reference forward passes of the unfolded eval-mode model and of the folded model.
//!
//! `#![no_std]` and allocation-free: it runs on the workstation, in WASM and on a Cortex-M
//! alike. It knows neither burn nor any file system; readers and writers of the actual bytes
//! live in the host's `namegen-files` and `train-host` (std) and in `sampler` (no_std).
//!
//! # Use
//!
//! ```
//! use namegen_model::{ModelConfig, Rng, Vocabulary, windows};
//!
//! // The vocabulary of a names file: the end symbol `.`, then its characters in order.
//! let vocab = Vocabulary::from_names(["emma", "olivia", "ava"])?;
//! assert_eq!(vocab.to_string(), ".aeilmov");
//!
//! // makemore part 3's architecture for it, and the training examples of one name: each
//! // context of 3 symbols (`.` before the start) with the symbol that follows it.
//! let config = ModelConfig::makemore(vocab.len());
//! let mut ids = [0u8; 16];
//! let len = vocab.encode_name("ava", &mut ids)?;
//! let examples: Vec<(Vec<u8>, u8)> = windows(&ids[..len], config.block_size())
//!     .map(|(context, next)| (context.ids().to_vec(), next))
//!     .collect();
//! assert_eq!(examples, [(vec![0, 0, 0], 1), (vec![0, 0, 1], 7), (vec![0, 1, 7], 1), (vec![1, 7, 1], 0)]);
//!
//! // The pinned PCG32: `pcg32_srandom_r(42, 54)` of the reference C implementation.
//! assert_eq!(Rng::with_stream(42, 54).next_u32(), 0xa15c_02b7);
//! # Ok::<(), namegen_model::vocab::VocabError>(())
//! ```
//!
//! # Features
//!
//! - `defmt`: `defmt::Format` for the public errors and the types they carry ([`Dtype`],
//!   [`TensorName`], [`format::Shape`], [`format::Storage`]), for firmware that logs through
//!   `defmt`.
//!
//! [`Rng`] is also a `rand_core` generator (`Rng` and `SeedableRng`; [`rng`] says how).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod fold;
pub mod format;
pub mod q8;
pub mod reference;
pub mod rng;
pub mod split;
pub mod vocab;

pub use config::ModelConfig;
pub use context::{Context, windows};
pub use format::{Dtype, TensorName};
pub use rng::Rng;
pub use split::{Part, SplitSizes, split};
pub use vocab::{END, END_INDEX, MAX_VOCAB, Vocabulary};
