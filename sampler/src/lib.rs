//! The device library: validates and views a folded `.safetensors` model in place, runs the
//! forward pass with fixed-size buffers, and samples and scores names with the pinned PRNG.
//!
//! `#![no_std]`, no allocator: it runs on a Cortex-M with the model in flash, in WASM, and on
//! the host. The `std` feature adds host conveniences; the core never needs them.
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod batch;
mod error;
pub mod forward;
mod json;
mod load;
pub mod sample;
pub mod score;
pub mod tensor;
pub mod view;

#[cfg(feature = "std")]
pub use batch::generate_batched;
pub use error::LoadError;
pub use forward::{Forward, TooWide};
pub use json::JsonError;
pub use sample::{DefaultSampler, Name, SampleError, Sampler, Settings};
pub use score::{Score, ScoreError, score};
pub use tensor::{Matrix, Vector};
pub use view::{Layer, ModelView};
