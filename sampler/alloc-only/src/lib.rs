//! Nothing but its test (`tests/batched.rs`): the sampler's batched generator as a target with
//! an allocator and without `std` (the WASM module, a larger part) builds it, with the
//! `alloc` feature alone, checked against the unbatched sampler.
#![no_std]
