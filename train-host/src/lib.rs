//! The workstation side of namegen: reading a names file, training makemore part 3's network
//! with burn on the CPU, checkpoints, diagnostics and plots, and the commands of the
//! `namegen` program.
//!
//! The shared contract (vocabulary, config, split, PRNG, file formats) lives in
//! `namegen-model`, the reading and writing of files in `namegen-files`; this crate adds the
//! trainer (burn), the fold's export and verification, and the program.
#![warn(missing_docs)]
// Results through `outln!` (a closed stdout ends the command quietly), messages through
// `note!` (a closed stderr is ignored): `println!` would panic on either.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod backward;
pub mod card;
pub mod cli;
pub mod commands;
pub mod console;
pub mod diagnostics;
pub mod export;
pub mod flags;
pub mod interrupt;
pub mod network;
pub mod plots;
pub mod q8;
pub mod trainer;
pub mod verify;

/// The program and version written as `provenance.writer` in every file this crate writes.
pub const WRITER: &str = concat!("namegen ", env!("CARGO_PKG_VERSION"));
