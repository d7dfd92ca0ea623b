//! The device library: validates and views a folded `.safetensors` model in place, runs the
//! forward pass with fixed-size buffers, and samples and scores names with the pinned PRNG.
//!
//! `#![no_std]`, no allocator: it runs on a Cortex-M with the model in flash, in WASM, and on
//! the host. The `alloc` feature adds the batched generator and `std` host conveniences; the
//! core never needs them.
//!
//! # Use
//!
//! ```
//! use namegen_sampler::{DefaultSampler, Forward, ModelView, Settings, score};
//!
//! // Any folded model (`namegen export`); this one is the q8 model the crate's tests use.
//! let bytes = std::fs::read("tests/data/model-q8.safetensors")?;
//! let model = ModelView::parse(&bytes)?; // validates once; weights stay in `bytes`
//!
//! // Five names starting with "ka", a little safer than the model itself.
//! let settings = Settings { temperature: 0.8, top_k: 10, prefix: "ka", seed: 42, ..Settings::default() };
//! for name in DefaultSampler::new(&model, settings)?.take(5) {
//!     // `text` is a heapless::String; `cut` says the name hit `max_len`.
//!     println!("{} {:.2} {}", name.text, name.log_likelihood, name.cut);
//! }
//!
//! // How likely the model finds a given name.
//! let scored = score(&model, &mut Forward::<100>::new(), "emma")?;
//! println!("{:.3} nats, perplexity {:.2}", scored.log_likelihood, scored.perplexity());
//!
//! // A name from any `rand_core` generator instead of the seed: a device's hardware
//! // generator, `rand::rng()` on a host, here the pinned PCG32 seeded through the trait.
//! use namegen_sampler::rand_core::SeedableRng;
//! let mut rng = namegen_model::Rng::seed_from_u64(1);
//! let name = DefaultSampler::new(&model, settings)?.name_from(&mut rng);
//! assert!(name.text.starts_with("ka"));
//!
//! // With an allocator (`alloc` feature): names 0..1000 of the same settings, DEFAULT_BATCH
//! // in flight; exactly the names the sampler above gives one by one.
//! # #[cfg(feature = "alloc")]
//! # {
//! let names = namegen_sampler::generate_batched(
//!     &model,
//!     &settings,
//!     &namegen_sampler::BatchOptions::new(1000),
//! )?;
//! let first: Vec<_> = DefaultSampler::new(&model, settings)?.take(5).collect();
//! assert_eq!(names[..5], first[..]);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A model without its header (small devices)
//!
//! [`ModelView::parse`] reads the file's JSON header and checks every byte; on a part whose
//! flash barely holds the weights, a build script can do that on the host instead and embed
//! only [`ModelView::tensors`] one after another plus a [`Layout`] (config, vocabulary, dtype),
//! which [`ModelView::from_layout`] turns back into the same view, checking shapes and lengths
//! only; [`ModelView::from_layout_portable`] does it in a `const fn`, so that the compiler puts
//! the view itself in flash. `sampler/firmware` does this for every firmware.
//!
//! # Features
//!
//! - `f32`, `f16`, `i8`, `q8` (default): the kernel of each dtype (`q8`: the integer-only
//!   network of `model/FORMAT.md`, drawn from in integers too). A model whose dtype's kernel
//!   is off is refused ([`LoadError::DtypeNotBuilt`], [`LayoutError::DtypeNotBuilt`]); a
//!   firmware embedding one model keeps its kernel alone. At least one is required.
//! - `dsp`: q8's dot product with the Cortex-M DSP extension's SMLAD and SXTB16
//!   (`src/q8/dsp.rs`; the same integers as the portable kernel), for ARM targets whose cores
//!   have it (`thumbv7em`: Cortex-M4 and M7; stable Rust does not expose
//!   `target_feature = "dsp"`, so the build chooses it by target). It changes only a q8 build
//!   and has no effect on other architectures; its input codes take 16 bits each.
//! - `armv7m`: q8's dot products in ARMv7-M assembly, four rows sharing each input load
//!   (`src/q8/armv7m.rs`; the same integers as the portable kernel), for ARM targets whose
//!   cores have ARMv7-M's instructions and no DSP extension (`thumbv7m`: Cortex-M3;
//!   `thumbv8m.main`: Cortex-M33), chosen by target like `dsp`, which takes precedence. It
//!   changes only a q8 build and has no effect on other architectures.
//! - `log-likelihood` (default): the field `Name::log_likelihood` (it exists only with this
//!   feature), f64 arithmetic the names themselves do not depend on (the same names come out
//!   without it).
//! - `defmt`: `defmt::Format` for the public errors, [`Name`] and [`Settings`] (and the
//!   model's errors and types they carry), for firmware that logs through `defmt`.
//! - `alloc`: the batched generator (`generate_batched`), for targets with an allocator
//!   and without `std` (WASM, larger parts) as well as the host: its buffers, cache and
//!   index come from `alloc`, named through `no-std-compat` so that one text serves both.
//! - `std` (implies `alloc`): host conveniences: AVX2 kernels detected at run time
//!   ([`Kernels`]), also in the batched generator, and a packed copy of the weights.
//!
//! # Same names everywhere
//!
//! A model file, a seed and [`Settings`] name one list of names on every target (x86_64,
//! WASM, Cortex-M with or without an FPU): the forward pass does every float operation in a
//! fixed order ([`dot_f32`]: 8 interleaved partial sums combined in a fixed tree; no
//! fused multiply-add), the activation is plain IEEE arithmetic ([`tanh`]), decoding
//! f16 and i8 is exact, and the draws come from the pinned PCG32 ([`namegen_model::Rng`])
//! through the documented rule of [`Sampler::name_at`]: name `k` of seed `s` uses
//! `Rng::with_stream(s, k)`. On x86_64 hosts with the `std` feature, when the CPU has AVX2
//! and F16C ([`Kernels::detect`], once per process; a view's [`ModelView::kernels`]), the
//! forward pass multiplies with a kernel written to the same order (`src/avx/`; from the
//! weights in place, or from the copy `ModelView::pack_weights` makes), as do its `tanh` and
//! the draw's `expf`, the batched generator runs an AVX2 kernel across 16 contexts, and q8's
//! integer layers have an AVX2 kernel too, with AVX-VNNI's `vpdpbusd` where the CPU has it
//! ([`Kernels::Avx2Vnni`]; the same integers in any order) and a whole AVX-512 pass where it
//! has that ([`Kernels::Avx512Vnni`]), and the q8 draw's weights AVX2 and AVX-512 kernels; all
//! compute the same bits (Rust neither fuses nor reassociates float operations; the tests
//! compare the forward pass with a plain scalar one bit for bit, F16C's f16 decoding with the
//! portable one on every pattern, the vector `tanh` and `expf` with the scalar ones, batched
//! names with unbatched ones, and logits, names and scores of [`Kernels::Portable`] with
//! those of every other choice the CPU runs). The batched generator also memoises logits per context,
//! which changes no bit: they are a pure function of the context. A wasm32 build with the
//! `simd128` target feature runs the forward pass's products and `tanh` with SIMD128 kernels
//! written to the same order (`src/simd128/`, [`Kernels::Simd128`]), the products from the
//! copy of the weights [`ModelView::pack_weights_into`] makes in a caller's buffer; the WASM
//! tests compare its names and scores with the host's.
//!
//! # RAM
//!
//! A [`DefaultSampler`] (buffers for layers up to 100 wide, names up to 128 bytes) is 1,904
//! bytes on 64-bit targets with every dtype's kernel and less on 32-bit ones, asserted below
//! 2 KB at compile time: for the float dtypes two activation buffers of 100 `f32`
//! ([`Forward`]; 1,280 bytes without `q8`), for q8 two of 100 int8 codes and 100 `i32` for
//! its Q16 logits, the logits every name starts from (100 values, computed once), the
//! settings (with q8's fixed-point temperature and `top_p`) and a name counter. While a name
//! is drawn, the stack also holds the name being built (160 bytes) and, per draw, the weights
//! of the symbols (at most 128 `f32`, or `u32` for q8). The model itself stays in the file's bytes
//! (flash); the [`ModelView`] over it holds the config, the tensor offsets and the symbols,
//! borrowed as the file's header or the layout holds them ([`Symbols`]; 1,280 bytes on 64-bit
//! targets, 32 of them the symbols and, with the `q8` feature, 432 the per-layer views of
//! q8's integers (empty for the float dtypes; without the feature they take no memory); 16
//! more with `std`, for the host's optional packed copy of the weights,
//! `ModelView::pack_weights`, and in a wasm32 build with `simd128` 72 more, the layers of the
//! copy [`ModelView::pack_weights_into`] makes).
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

// A sampler without a single kernel could view no model at all.
#[cfg(not(any(feature = "f32", feature = "f16", feature = "i8", feature = "q8")))]
compile_error!("namegen-sampler needs at least one of the features f32, f16, i8 and q8");

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
// Private modules, one path per item: everything public is re-exported below.
#[cfg(feature = "alloc")]
mod batch;
mod bound;
mod error;
mod forward;
mod json;
mod kernels;
mod layout;
mod load;
mod math;
#[cfg(feature = "q8")]
mod q8;
mod sample;
mod score;
mod symbols;
mod tensor;
mod view;

#[cfg(feature = "alloc")]
pub use batch::{BatchOptions, DEFAULT_BATCH, DEFAULT_CACHE_BYTES, generate_batched};
pub use bound::MAX_MAGNITUDE;
pub use error::{JsonError, LoadError};
pub use forward::{DEFAULT_WIDTH, Forward, TooWide};
pub use kernels::Kernels;
pub use layout::{Layout, LayoutError};
pub use math::tanh;
/// The `rand_core` whose generators [`Sampler::name_from`] takes and [`namegen_model::Rng`]
/// implements, for a caller that does not depend on it by name.
pub use rand_core;
pub use sample::{
    DEFAULT_MAX_LEN, DEFAULT_NAME_BYTES, DefaultSampler, Name, SampleError, Sampler, Settings,
};
pub use score::{MAX_SCORED_LEN, Score, ScoreError, score};
pub use symbols::Symbols;
pub use tensor::{Matrix, Vector, dot_f32, f16_to_f32};
pub use view::{BufferTooSmall, Layer, ModelView, Requant};
