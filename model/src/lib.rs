//! The contract every namegen crate shares: the vocabulary and its encoding, the architecture
//! config, context windowing, the pinned PRNG and the train/val/test split, the tensor names,
//! shapes, dtypes and metadata keys of both file formats ([`format`], and `FORMAT.md`), the
//! integer requantisation of the q8 dtype ([`q8`]), the BatchNorm fold arithmetic in f64, and
//! plain f64 reference forward passes of the unfolded eval-mode model and of the folded model.
//!
//! `#![no_std]` and allocation-free: it runs on the workstation, in WASM and on a Cortex-M
//! alike. It knows neither burn nor any file system; readers and writers of the actual bytes
//! live in `train-host` (std) and `sampler` (no_std).
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
