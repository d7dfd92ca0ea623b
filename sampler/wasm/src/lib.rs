//! The name generator as a WASM module for `wasm32-unknown-unknown`, with plain C-ABI exports.
//!
//! Plain exports rather than `wasm-bindgen`: the page then needs no generated JS glue and no
//! build step beyond `cargo build` and copying files, the module has no imports at all (Node
//! and the browser instantiate it with an empty import object), and no bindgen runtime adds to
//! its size (the budget is 32 KB gzipped, for each of the two builds: plain, and with the
//! sampler's SIMD128 kernels when built with `-C target-feature=+simd128`).
//!
//! # Protocol
//!
//! Everything goes through fixed buffers in the module's memory, so the module needs no
//! allocator: the caller writes bytes at the address an export returns, then calls an export
//! that reads them.
//!
//! 1. Write the model file at the address [`model_buffer`] returns (at most
//!    [`MODEL_CAPACITY`] bytes; asking for the address forgets the loaded model, whose bytes
//!    are about to change), call [`load_model`] with its length. The model is parsed and
//!    checked once, there, not again for every call.
//! 2. Write the prefix (UTF-8) at [`input_buffer`], call [`generate`].
//! 3. Read the names, one per line, from [`text_buffer`]; name `i`'s log-likelihood is
//!    `f64` number `i` at [`scores_buffer`], and byte `i` at [`cut_buffer`] is 1 when the name
//!    was cut at the maximum length.
//!
//! Every call that can fail returns an `i32`: `n >= 0` on success, with `n` bytes of text at
//! [`text_buffer`]; `-n` on failure, with `n` bytes of message there, written for the user.
//! The module is single-threaded and its exports are not re-entrant: JS calls them one at a
//! time, which is all `wasm32-unknown-unknown` allows anyway.
#![no_std]

use core::cell::UnsafeCell;
use core::fmt::{self, Write};

use namegen_sampler::DEFAULT_WIDTH;
use namegen_sampler::{DefaultSampler, Forward, ModelView, Settings, score};

/// The largest model file the page takes: the f32 makemore model (183 KiB) with room to spare.
pub const MODEL_CAPACITY: usize = 256 * 1024;

/// The largest prefix or name to score, in UTF-8 bytes.
pub const INPUT_CAPACITY: usize = 1024;

/// The most names one [`generate`] call makes.
pub const MAX_NAMES: usize = 1000;

/// Room for [`MAX_NAMES`] names of the sampler's full capacity plus their newlines.
pub const TEXT_CAPACITY: usize = 128 * 1024;

const _: () = assert!(MAX_NAMES * (namegen_sampler::DEFAULT_NAME_BYTES + 1) <= TEXT_CAPACITY);

/// A buffer JS writes or reads through the module's memory.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: wasm32-unknown-unknown has one thread, and each export finishes before JS can call
// another, so no two accesses to a buffer ever overlap.
unsafe impl<T> Sync for Shared<T> {}

static MODEL: Shared<[u8; MODEL_CAPACITY]> = Shared(UnsafeCell::new([0; MODEL_CAPACITY]));
static INPUT: Shared<[u8; INPUT_CAPACITY]> = Shared(UnsafeCell::new([0; INPUT_CAPACITY]));
static TEXT: Shared<[u8; TEXT_CAPACITY]> = Shared(UnsafeCell::new([0; TEXT_CAPACITY]));
static SCORES: Shared<[f64; MAX_NAMES]> = Shared(UnsafeCell::new([0.0; MAX_NAMES]));
static CUT: Shared<[u8; MAX_NAMES]> = Shared(UnsafeCell::new([0; MAX_NAMES]));

/// Values of [`PACKED`]: enough for every model the page takes (layers at most
/// [`DEFAULT_WIDTH`] wide); 0 in the plain build, whose kernels read the weights in place.
const PACKED_CAPACITY: usize = ModelView::packed_capacity(DEFAULT_WIDTH);

/// The loaded model's weights in the order the SIMD128 kernels read them, copied once by
/// [`load_model`] (zero-initialised memory, which takes no bytes of the module).
static PACKED: Shared<[f32; PACKED_CAPACITY]> = Shared(UnsafeCell::new([0.0; PACKED_CAPACITY]));

/// The loaded model, a view of the bytes at [`model_buffer`]; `None` while none is loaded
/// (also after a failed load, and from the moment the caller asks where to write new bytes).
static VIEW: Shared<Option<ModelView<'static>>> = Shared(UnsafeCell::new(None));

/// Where the caller writes a model file. Forgets the loaded model first: the caller is about
/// to overwrite its bytes, which no view may then point to.
#[unsafe(no_mangle)]
pub extern "C" fn model_buffer() -> *mut u8 {
    // SAFETY: see `Shared`; the only reference to the view during this call.
    unsafe { *VIEW.0.get() = None };
    MODEL.0.get().cast()
}

/// Bytes [`model_buffer`] holds.
#[unsafe(no_mangle)]
pub extern "C" fn model_capacity() -> usize {
    MODEL_CAPACITY
}

/// Where the caller writes a prefix or a name to score.
#[unsafe(no_mangle)]
pub extern "C" fn input_buffer() -> *mut u8 {
    INPUT.0.get().cast()
}

/// Bytes [`input_buffer`] holds.
#[unsafe(no_mangle)]
pub extern "C" fn input_capacity() -> usize {
    INPUT_CAPACITY
}

/// Where the module writes names and messages.
#[unsafe(no_mangle)]
pub extern "C" fn text_buffer() -> *const u8 {
    TEXT.0.get().cast()
}

/// The log-likelihood of each generated name, `f64`s in name order.
#[unsafe(no_mangle)]
pub extern "C" fn scores_buffer() -> *const f64 {
    SCORES.0.get().cast()
}

/// One byte per generated name: 1 when it was cut at the maximum length, 0 when it ended.
#[unsafe(no_mangle)]
pub extern "C" fn cut_buffer() -> *const u8 {
    CUT.0.get().cast()
}

/// The most names one [`generate`] call makes.
#[unsafe(no_mangle)]
pub extern "C" fn max_names() -> usize {
    MAX_NAMES
}

/// Validates the `len` bytes at [`model_buffer`] with the sampler's loader and keeps them as
/// the model; the text is a one-line description of the model, or why it was refused.
#[unsafe(no_mangle)]
pub extern "C" fn load_model(len: usize) -> i32 {
    // SAFETY: see `Shared`; the only reference to the view during this call.
    let view = unsafe { &mut *VIEW.0.get() };
    *view = None;
    if len > MODEL_CAPACITY {
        return fail(format_args!(
            "the file is {len} bytes; this page takes models up to {MODEL_CAPACITY} bytes"
        ));
    }
    // SAFETY: see `Shared`. The view kept below borrows these bytes until `model_buffer` or
    // `load_model` forgets it, before the caller may write to them again (the protocol: it
    // writes at the address `model_buffer` just returned).
    let bytes = unsafe { &(&*MODEL.0.get())[..len] };
    let mut model = match ModelView::parse(bytes) {
        Ok(model) => model,
        Err(e) => return fail(format_args!("not a usable namegen model: {e}")),
    };
    if let Err(e) = Forward::<DEFAULT_WIDTH>::check(&model) {
        return fail(format_args!("this model is too large for the page: {e}"));
    }
    // SAFETY: see `Shared`; the view kept below borrows the packed copy until `model_buffer`
    // or `load_model` forgets it, and only this call writes to it, after the view is gone.
    let packed = unsafe { &mut *PACKED.0.get() };
    if let Err(e) = model.pack_weights_into(packed) {
        return fail(format_args!("this model is too large for the page: {e}"));
    }
    let config = model.config();
    let described = succeed(format_args!(
        "{} model: {} symbols, context of {}, {} parameters",
        model.dtype(),
        config.vocab_size(),
        config.block_size(),
        config.folded_parameters()
    ));
    *view = Some(model);
    described
}

/// Makes `count` names (at most [`MAX_NAMES`]) with these settings: names `first..first +
/// count` of the seed, each [`namegen_sampler::Sampler::name_at`] its index, so that calls in
/// blocks give exactly the list `namegen sample` gives for any count. The prefix is the
/// `prefix_len` bytes at [`input_buffer`]. The meaning of each setting, and the promise that a
/// seed names the same list everywhere, are `namegen_sampler::Settings`'.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // one argument per setting keeps the ABI plain numbers
pub extern "C" fn generate(
    count: usize,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    seed: u64,
    first: u64,
    prefix_len: usize,
    min_len: usize,
    max_len: usize,
) -> i32 {
    // SAFETY: see `Shared`; these are the only references to the view and input buffer
    // during this call, and they end with it.
    let (view, input) = unsafe { (&*VIEW.0.get(), &*INPUT.0.get()) };
    let Some(model) = view else {
        return fail(format_args!("no model is loaded"));
    };
    if count > MAX_NAMES {
        return fail(format_args!("at most {MAX_NAMES} names at a time"));
    }
    // The last name's index must be a u64 too: name indices do not wrap.
    if (count as u64).saturating_sub(1) > u64::MAX - first {
        return fail(format_args!("names past index {} do not exist", u64::MAX));
    }
    let Some(prefix) = input_text(input, prefix_len) else {
        return fail(format_args!("the prefix is not text"));
    };
    let settings = Settings {
        temperature,
        top_k,
        top_p,
        seed,
        prefix,
        min_len,
        max_len,
    };
    let mut sampler = match DefaultSampler::new(model, settings) {
        Ok(sampler) => sampler,
        Err(e) => return fail(format_args!("{e}")),
    };
    // SAFETY: see `Shared`; the only references to these buffers, ending with this call.
    let (text, scores, cut) =
        unsafe { (&mut *TEXT.0.get(), &mut *SCORES.0.get(), &mut *CUT.0.get()) };
    let mut written = 0;
    for index in 0..count {
        let name = sampler.name_at(first + index as u64);
        let bytes = name.text.as_bytes();
        text[written..written + bytes.len()].copy_from_slice(bytes);
        text[written + bytes.len()] = b'\n';
        written += bytes.len() + 1;
        scores[index] = name.log_likelihood;
        cut[index] = u8::from(name.cut);
    }
    written as i32
}

/// Scores the name in the `len` bytes at [`input_buffer`]: its log-likelihood (end symbol
/// included) goes to `f64` 0 at [`scores_buffer`] and its symbol count to `f64` 1; the text
/// is empty. Fails for characters the model does not know.
#[unsafe(no_mangle)]
pub extern "C" fn score_name(len: usize) -> i32 {
    // SAFETY: as in `generate`.
    let (view, input) = unsafe { (&*VIEW.0.get(), &*INPUT.0.get()) };
    let Some(model) = view else {
        return fail(format_args!("no model is loaded"));
    };
    let Some(name) = input_text(input, len) else {
        return fail(format_args!("the name is not text"));
    };
    let mut forward = Forward::<DEFAULT_WIDTH>::new();
    match score(model, &mut forward, name) {
        Ok(s) => {
            // SAFETY: as in `generate`.
            let scores = unsafe { &mut *SCORES.0.get() };
            scores[0] = s.log_likelihood;
            scores[1] = s.symbols as f64;
            0
        }
        Err(e) => fail(format_args!("cannot score \u{201c}{name}\u{201d}: {e}")),
    }
}

/// The first `len` bytes of `input` as text, or `None` when out of range or not UTF-8.
fn input_text(input: &[u8], len: usize) -> Option<&str> {
    core::str::from_utf8(input.get(..len)?).ok()
}

/// Writes a success text; returns its length.
fn succeed(args: fmt::Arguments<'_>) -> i32 {
    write_text(args) as i32
}

/// Writes a failure message; returns minus its length.
fn fail(args: fmt::Arguments<'_>) -> i32 {
    -(write_text(args).max(1) as i32)
}

/// Writes `args` at [`text_buffer`] (cut at its capacity, which messages never reach).
fn write_text(args: fmt::Arguments<'_>) -> usize {
    /// The text buffer as a `fmt::Write` sink.
    struct Sink<'b> {
        buffer: &'b mut [u8],
        len: usize,
    }
    impl Write for Sink<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            let slot = self.buffer.get_mut(self.len..end).ok_or(fmt::Error)?;
            slot.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    // SAFETY: see `Shared`; the only reference to the text buffer during this call.
    let buffer = unsafe { &mut *TEXT.0.get() };
    let mut sink = Sink { buffer, len: 0 };
    // A message longer than the buffer keeps what fitted.
    let _ = sink.write_fmt(args);
    sink.len
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing panics on any input (the loader and the sampler check everything); were it to,
    // a trap makes the JS call throw instead of going on with broken state.
    core::arch::wasm32::unreachable()
}
