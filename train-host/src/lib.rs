//! The workstation side of namegen: reading a names file, training makemore part 3's network
//! with burn on the CPU, checkpoints, diagnostics and plots, and the commands of the
//! `namegen` program.
//!
//! The shared contract (vocabulary, config, split, PRNG, file formats) lives in
//! `namegen-model`; this crate adds everything that needs `std` and burn.
#![warn(missing_docs)]

pub mod backward;
pub mod card;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod dataset;
pub mod diagnostics;
pub mod export;
pub mod network;
pub mod plots;
pub mod safetensors_file;
pub mod trainer;
pub mod verify;

/// The program and version written as `provenance.writer` in every file this crate writes.
pub const WRITER: &str = concat!("namegen ", env!("CARGO_PKG_VERSION"));
