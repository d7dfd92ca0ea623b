//! The files of the namegen host program, without the trainer: the names-file reader and its
//! split into examples, the unfolded checkpoint, bounded reads of every input, and the one way
//! every output is written ([`output::Outputs`]: checked before the work starts, atomic, never
//! through a link, never over an input).
//!
//! Kept apart from `namegen-host` so that its readers can be fuzzed without building burn
//! (`files/fuzz`).
#![warn(missing_docs)]

pub mod checkpoint;
pub mod dataset;
pub mod input;
pub mod output;
pub mod safetensors_file;
