//! Many names in flight at once, for throughput on the host.
//!
//! Up to [`BatchOptions::batch`] names advance together. Each step looks every name's context
//! up in a cache of logits and what the draw and the log-likelihood read of them (a float
//! model's temperature-1 softmax weights, the `expf` every draw starts from; a q8 model's
//! total of its integer weights); the contexts not found there (each only once, however many
//! names share it) are embedded into groups of [`GROUP`], then each layer multiplies every group with
//! [`crate::Matrix::matmul_group`], whose vector registers run across the contexts of a group
//! (activations are kept transposed, `[width][GROUP]`), so each weight is read once per group
//! and no context needs a horizontal sum. With [`Kernels::Avx2`] (the view's
//! [`ModelView::kernels`]) the weights are first decoded to f32 and the product runs in the
//! AVX2 group kernel of `crate::avx`: the same bits, 7 to 32 % faster without the cache than
//! the portable kernel on an AVX2 machine, and 6 to 19 % faster than the portable kernel
//! compiled for AVX-512 on an AVX-512 one. A name that ends leaves its slot and the next name
//! takes it, so the batch stays full.
//!
//! The cache is exact: the logits are a pure function of the context (`block_size` symbols),
//! and the arithmetic for each context is exactly the unbatched one (same dot-product order,
//! same `tanh`), whichever lane or step computes it. Each name then draws from its own stream,
//! so the names are bit for bit those of [`crate::Sampler::name_at`], whatever the batch size
//! and the cache size. Every name starts from the same all-`.` context and common prefixes
//! repeat, so the more names one call generates, the more of their contexts are found: the
//! default 27-symbol, 3-symbol-context model has only 19,683 contexts in all.
//!
//! A q8 model's contexts run one at a time through the integer network (`crate::q8`, with its
//! AVX2 kernel under [`Kernels::Avx2`]), the code one name at a time runs: the same logits as
//! unbatched, still memoised and drawn in batches.
//!
//! [`generate_batched`] reads top-down: [`Slots`] holds the names in flight, [`Cache`] the
//! values of every context met, [`Lanes`] the contexts computed in one step and [`Weights`]
//! the layers' weights as the chosen kernel reads them; each step fills the empty slots, looks
//! the contexts up, runs the layers on the new ones, stores their values and advances every
//! name by one symbol.

// One text for both builds: `std`'s collections with the `std` feature, `alloc`'s without.
use no_std_compat::collections::BTreeMap;
use no_std_compat::prelude::v1::*;

use namegen_model::Dtype;
use namegen_model::config::MAX_BLOCK_SIZE;
#[cfg(feature = "q8")]
use namegen_model::q8::TANH_TABLE_LEN;

use crate::kernels::Kernels;
#[cfg(all(feature = "q8", feature = "log-likelihood"))]
use crate::sample::q16::Plain;
use crate::sample::{
    DEFAULT_NAME_BYTES, InFlight, Name, Rules, SampleError, Settings, Step, softmax_weights,
    validate,
};
use crate::tensor::{GROUP, Matrix, Vector};
use crate::view::{Layer, ModelView};

/// What [`generate_batched`] keeps per context, in bytes: 8 MiB, every context of the default
/// model (19,683 of 27 f32 logits and 27 f32 weights: 4.3 MB; in q8, 27 Q16 logits and an
/// 8-byte total: 2.3 MB) or 8,192 contexts of a 128-symbol float model (16,131 of a q8 one).
/// The index (a B-tree) adds about 40 bytes per context.
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

/// A good [`BatchOptions::batch`] (any value gives the same names): with 256 names in
/// flight each step has enough contexts the cache has not seen to fill the groups of
/// 16 the kernel multiplies at once (for 4,096 names of the default model, 64 in flight run
/// twice the kernel work).
pub const DEFAULT_BATCH: usize = 256;

/// Which names [`generate_batched`] makes and with how much in flight. `first` and `count`
/// choose the names; `batch` and `cache_bytes` trade speed for memory and never change a name.
///
/// `Default` is [`BatchOptions::new`]`(0)`: no names until `count` is set, as in
/// `BatchOptions { count: 1000, ..BatchOptions::default() }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// The index of the first name: the names are `first..first + count`, name `k` being
    /// [`crate::Sampler::name_at`]`(k)` of the same settings. 0 by default.
    pub first: u64,
    /// How many names.
    pub count: usize,
    /// The most names in flight at a time, rounded up to a multiple of 16 (the kernel's
    /// group); fewer when `count` is smaller. [`DEFAULT_BATCH`] by default.
    pub batch: usize,
    /// The most bytes the logits cache holds per context: a float model's `8 * vocab_size`
    /// (the f32 logits and their temperature-1 weights), a q8 model's `4 * vocab_size + 8`
    /// (the Q16 logits and, with the `log-likelihood` feature, their total), plus about 40
    /// bytes of index. When
    /// a step would overflow it, the cache is emptied and refills. With 0 nothing is memoised
    /// and every name's every step runs the model: the compute-only speed, for benchmarks.
    /// [`DEFAULT_CACHE_BYTES`] by default.
    pub cache_bytes: usize,
}

impl BatchOptions {
    /// Names `0..count`, [`DEFAULT_BATCH`] in flight, a cache of [`DEFAULT_CACHE_BYTES`].
    pub const fn new(count: usize) -> Self {
        Self {
            first: 0,
            count,
            batch: DEFAULT_BATCH,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self::new(0)
    }
}

/// Names `options.first..options.first + options.count` of `settings`, up to
/// `options.batch` of them in flight at a time; the same names, in the same order, as
/// [`crate::Sampler::name_at`] gives one by one, whatever the batch and cache sizes. Each
/// [`Name`] carries its text, its log-likelihood under the model and whether it was cut at
/// `max_len`: what a command-line program prints.
///
/// Logits are memoised per context for the duration of the call, up to
/// `options.cache_bytes` ([`BatchOptions::cache_bytes`]). The layers and draws run with the
/// model's [`ModelView::kernels`]; a q8 view whose kernels read packed weights and that has
/// none gets a packed copy for the call (as [`ModelView::pack_weights`] makes, 50 KB for the
/// default model).
///
/// The buffers are sized by the model (no width limit), so only the settings can be wrong.
pub fn generate_batched(
    model: &ModelView<'_>,
    settings: &Settings<'_>,
    options: &BatchOptions,
) -> Result<Vec<Name<DEFAULT_NAME_BYTES>>, SampleError> {
    #[cfg(all(feature = "q8", feature = "std", target_arch = "x86_64"))]
    let packed = packed_q8(model);
    #[cfg(all(feature = "q8", feature = "std", target_arch = "x86_64"))]
    let model = packed.as_ref().unwrap_or(model);
    let rules = validate(model, settings, DEFAULT_NAME_BYTES)?;
    let weights = Weights::new(model);
    let net = weights.layers(model);
    let mut slots = Slots::new(options);
    let mut cache = Cache::new(model, options.cache_bytes);
    let mut lanes = Lanes::new(model, slots.len());
    while slots.fill(model, &rules) {
        cache.make_room(slots.len());
        slots.look_up(&mut cache, &mut lanes, model);
        weights.run(model, &net, &mut lanes);
        cache.store(&lanes, model.kernels());
        slots.advance(&cache, model, &rules);
    }
    Ok(slots.finish())
}

/// A copy of the q8 `model` with its weights packed ([`ModelView::pack_weights`]), if its
/// kernels would read them so and it has none: AVX-512's pass and AVX-VNNI's products read only
/// a packed copy, and without one a q8 view runs AVX2's slower products. Packing changes no bit.
#[cfg(all(feature = "q8", feature = "std", target_arch = "x86_64"))]
fn packed_q8<'a>(model: &ModelView<'a>) -> Option<ModelView<'a>> {
    let wanted = model.tanh_table().is_some() && model.kernels().avx2() && model.packed.is_none();
    wanted.then(|| {
        let mut packed = model.clone();
        packed.pack_weights();
        packed
    })
}

/// The names in flight, one per slot, and the finished ones. A name that ends leaves its slot
/// and the next name takes it, so the batch stays full.
struct Slots<'p> {
    /// Per slot, the name's position in the call (0 for `first`) and the name being drawn.
    slots: Vec<Option<(usize, InFlight<'p, DEFAULT_NAME_BYTES>)>>,
    /// Per slot, its context's entry in the [`Cache`] this step.
    entries: Vec<usize>,
    /// The finished names, by position; as many as the names asked for.
    done: Vec<Option<Name<DEFAULT_NAME_BYTES>>>,
    /// The index of the call's first name.
    first: u64,
    /// The position of the next name to start.
    next: usize,
}

impl<'p> Slots<'p> {
    /// Empty slots for `options.batch` names, at most `options.count`, in whole groups.
    fn new(options: &BatchOptions) -> Self {
        let count = options.count;
        let slots = options.batch.clamp(1, count.max(1)).next_multiple_of(GROUP);
        Self {
            slots: (0..slots).map(|_| None).collect(),
            entries: vec![0; slots],
            done: vec![None; count],
            first: options.first,
            next: 0,
        }
    }

    /// How many slots: names in flight at most.
    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Starts the next names in the empty slots; false once every name is finished.
    fn fill(&mut self, model: &ModelView<'_>, rules: &Rules<'p>) -> bool {
        for slot in self.slots.iter_mut().filter(|s| s.is_none()) {
            if self.next == self.done.len() {
                break;
            }
            let index = self.first + self.next as u64;
            *slot = Some((self.next, InFlight::new(model, rules, index)));
            self.next += 1;
        }
        self.slots.iter().any(Option::is_some)
    }

    /// Finds every name's context in `cache`; a context not there (each only once, however
    /// many names share it) gets an entry and is embedded into the next of `lanes`.
    fn look_up(&mut self, cache: &mut Cache, lanes: &mut Lanes, model: &ModelView<'_>) {
        lanes.clear();
        for (slot, entry) in self.slots.iter().zip(&mut self.entries) {
            let Some(context) = slot.as_ref().and_then(|(_, name)| name.context()) else {
                continue;
            };
            let (at, new) = cache.entry(context);
            *entry = at;
            if new {
                lanes.embed(model, context, at);
            }
        }
    }

    /// Every name takes its next symbol from its context's entry in `cache`; the names that
    /// end leave their slots.
    fn advance(&mut self, cache: &Cache, model: &ModelView<'_>, rules: &Rules<'_>) {
        for (slot, &at) in self.slots.iter_mut().zip(&self.entries) {
            let Some((index, name)) = slot else {
                continue;
            };
            name.advance_with(&cache.step(at), model, rules);
            if name.context().is_none() {
                let index = *index;
                if let Some((_, name)) = slot.take() {
                    self.done[index] = Some(name.finish());
                }
            }
        }
    }

    /// The finished names, in order.
    fn finish(self) -> Vec<Name<DEFAULT_NAME_BYTES>> {
        self.done.into_iter().flatten().collect()
    }
}

/// Bytes a q8 model's cache entry keeps beside its Q16 logits: their [`Plain`] total, which
/// only the log-likelihood reads.
#[cfg(all(feature = "q8", feature = "log-likelihood"))]
const PLAIN_BYTES: usize = size_of::<Plain>();
/// A build without q8 or the log-likelihood keeps none.
#[cfg(not(all(feature = "q8", feature = "log-likelihood")))]
const PLAIN_BYTES: usize = 0;

/// Per context met in the call, found by its symbols packed into a key, at one entry index:
/// a float model's `vocab` logits and their `vocab` temperature-1 weights, or a q8 model's
/// `vocab` Q16 logits and their temperature-1 [`Plain`] total (a [`Step`]).
struct Cache {
    vocab: usize,
    /// The most contexts held; with 0 nothing is looked up and every context is computed.
    capacity: usize,
    /// A float model's logits; empty for a q8 model.
    logits: Vec<f32>,
    /// A float model's temperature-1 weights; empty for a q8 model.
    weights: Vec<f32>,
    /// Entries in use.
    len: usize,
    /// A q8 model's Q16 logits, which its draw reads; empty for a float model.
    #[cfg(feature = "q8")]
    q16: Vec<i32>,
    /// A q8 model's temperature-1 total per entry, which its log-likelihood reads.
    #[cfg(all(feature = "q8", feature = "log-likelihood"))]
    plains: Vec<Plain>,
    /// Whether the model is q8.
    #[cfg(feature = "q8")]
    integer: bool,
    known: BTreeMap<u128, usize>,
}

impl Cache {
    /// An empty cache of at most `bytes` for `model`.
    fn new(model: &ModelView<'_>, bytes: usize) -> Self {
        let vocab = model.config().vocab_size();
        let integer = model.tanh_table().is_some();
        let per_context = match integer {
            true => 4 * vocab + PLAIN_BYTES,
            false => 8 * vocab.max(1),
        };
        Self {
            vocab,
            capacity: bytes / per_context,
            logits: Vec::new(),
            weights: Vec::new(),
            len: 0,
            #[cfg(feature = "q8")]
            q16: Vec::new(),
            #[cfg(all(feature = "q8", feature = "log-likelihood"))]
            plains: Vec::new(),
            #[cfg(feature = "q8")]
            integer,
            known: BTreeMap::new(),
        }
    }

    /// Empties the cache if `incoming` more contexts could overflow it.
    fn make_room(&mut self, incoming: usize) {
        if self.len + incoming > self.capacity {
            self.logits.clear();
            self.weights.clear();
            self.len = 0;
            #[cfg(feature = "q8")]
            self.q16.clear();
            #[cfg(all(feature = "q8", feature = "log-likelihood"))]
            self.plains.clear();
            self.known.clear();
        }
    }

    /// The entry of `context`, and whether it is new: then its values are yet to be computed
    /// and given to [`Cache::store`].
    fn entry(&mut self, context: &[u8]) -> (usize, bool) {
        let at = self.len;
        if self.capacity > 0 {
            // A context met before has an entry below `at`, the next one.
            let found = *self.known.entry(key(context)).or_insert(at);
            if found != at {
                return (found, false);
            }
        }
        self.len += 1;
        #[cfg(feature = "q8")]
        if self.integer {
            self.q16.resize(self.q16.len() + self.vocab, 0);
            #[cfg(feature = "log-likelihood")]
            self.plains.push(Plain::default());
            return (at, true);
        }
        self.logits.resize(self.logits.len() + self.vocab, 0.0);
        self.weights.resize(self.weights.len() + self.vocab, 0.0);
        (at, true)
    }

    /// Stores the logits the layers left in `lanes` into the new entries, with their weights
    /// computed by `kernels` (the view's).
    fn store(&mut self, lanes: &Lanes, kernels: Kernels) {
        let vocab = self.vocab;
        for (lane, &at) in lanes.entries.iter().enumerate() {
            #[cfg(feature = "q8")]
            if self.integer {
                let q = &mut self.q16[at * vocab..][..vocab];
                q.copy_from_slice(&lanes.q16[lane * vocab..][..vocab]);
                // Only the log-likelihood reads the total: the draw reads `q`.
                #[cfg(feature = "log-likelihood")]
                {
                    self.plains[at] = Plain::of(q, kernels);
                }
                continue;
            }
            let z = &mut self.logits[at * vocab..][..vocab];
            lanes.logits_into(lane, z);
            softmax_weights(z, &mut self.weights[at * vocab..][..vocab], kernels);
        }
    }

    /// Entry `at`'s values, for the draw.
    fn step(&self, at: usize) -> Step<'_> {
        #[cfg(all(feature = "q8", any(feature = "f32", feature = "f16", feature = "i8")))]
        if self.integer {
            return self.q16_step(at);
        }
        #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
        {
            let values = at * self.vocab..(at + 1) * self.vocab;
            Step::Float {
                z: &self.logits[values.clone()],
                plain: &self.weights[values],
            }
        }
        // A build with the q8 kernel alone views q8 models only.
        #[cfg(not(any(feature = "f32", feature = "f16", feature = "i8")))]
        self.q16_step(at)
    }

    /// Entry `at`'s values for a q8 model.
    #[cfg(feature = "q8")]
    fn q16_step(&self, at: usize) -> Step<'_> {
        Step::Q16 {
            q: &self.q16[at * self.vocab..][..self.vocab],
            #[cfg(feature = "log-likelihood")]
            plain: Some(self.plains[at]),
        }
    }
}

/// The contexts computed in one step, one per lane, in groups of [`GROUP`] lanes: their
/// activations, transposed (`[width][GROUP]` per group, groups `width` apart), and the cache
/// entries their logits go to. Lanes past the last context compute on stale values, which
/// nobody reads.
struct Lanes {
    /// The activations: the embedded contexts, then each layer's outputs; the logits end here.
    x: Vec<[f32; GROUP]>,
    /// The other activation buffer, which each layer writes.
    y: Vec<[f32; GROUP]>,
    /// The widest activation, [`namegen_model::ModelConfig::max_width`].
    width: usize,
    /// Per lane in use, its context's cache entry.
    entries: Vec<usize>,
    /// One embedding row.
    row: Vec<f32>,
    /// The contexts of the lanes in use, one after another (`block_size` symbols each): what
    /// the q8 network starts from.
    contexts: Vec<u8>,
    /// A q8 model's Q16 logits, `vocab_size` per lane; empty for a float model.
    #[cfg(feature = "q8")]
    q16: Vec<i32>,
}

impl Lanes {
    /// Room for `slots` contexts (a multiple of [`GROUP`]) of `model`.
    fn new(model: &ModelView<'_>, slots: usize) -> Self {
        let config = model.config();
        let width = config.max_width();
        Self {
            x: vec![[0.0f32; GROUP]; slots / GROUP * width],
            y: vec![[0.0f32; GROUP]; slots / GROUP * width],
            width,
            entries: Vec::with_capacity(slots),
            row: vec![0.0f32; config.embed_dim()],
            contexts: Vec::with_capacity(slots * config.block_size()),
            #[cfg(feature = "q8")]
            q16: match model.tanh_table() {
                Some(_) => vec![0; slots * config.vocab_size()],
                None => Vec::new(),
            },
        }
    }

    /// No lane in use.
    fn clear(&mut self) {
        self.entries.clear();
        self.contexts.clear();
    }

    /// Embeds `context` into the next lane, whose logits go to cache entry `at`.
    fn embed(&mut self, model: &ModelView<'_>, context: &[u8], at: usize) {
        let lane = self.entries.len();
        self.entries.push(at);
        self.contexts.extend_from_slice(context);
        if model.tanh_table().is_some() {
            // q8 embeds its int8 codes itself.
            return;
        }
        let dim = self.row.len();
        let (xt, b) = (&mut self.x[lane / GROUP * self.width..], lane % GROUP);
        for (position, &symbol) in context.iter().enumerate() {
            model
                .embedding()
                .row_into(usize::from(symbol), &mut self.row);
            for (k, &value) in self.row.iter().enumerate() {
                xt[position * dim + k][b] = value;
            }
        }
    }

    /// Groups holding a lane in use.
    fn groups(&self) -> usize {
        self.entries.len().div_ceil(GROUP)
    }

    /// Runs the q8 network (`table` is `model`'s) on each lane's context alone and leaves
    /// the Q16 logits in `q16`.
    #[cfg(feature = "q8")]
    fn integer(&mut self, model: &ModelView<'_>, table: &[u8; TANH_TABLE_LEN]) {
        let (width, vocab) = (self.width, model.config().vocab_size());
        let mut codes: Vec<crate::q8::Code> = vec![0; 2 * width];
        let mut logits = vec![0; width];
        let contexts = self
            .contexts
            .chunks_exact(model.config().block_size().max(1));
        for (lane, context) in contexts.enumerate() {
            let (x, y) = codes.split_at_mut(width);
            let n = crate::q8::logits(model, table, context, x, y, &mut logits);
            self.q16[lane * vocab..][..n].copy_from_slice(&logits[..n]);
        }
    }

    /// A float model's lane `lane`'s logits, once the layers have run, into `z` (`vocab_size`
    /// of them).
    fn logits_into(&self, lane: usize, z: &mut [f32]) {
        let xt = &self.x[lane / GROUP * self.width..][..z.len()];
        for (z, xt) in z.iter_mut().zip(xt) {
            *z = xt[lane % GROUP];
        }
    }
}

/// The layers' weights as the view's kernels read them.
enum Weights {
    /// For the portable group kernel: per layer, an f16 matrix's values widened to f32 bytes
    /// ([`widen`]); empty for the other dtypes, which it reads as stored.
    Portable(Vec<Vec<u8>>),
    /// For [`Kernels::Avx2`] and [`Kernels::Avx2Vnni`]: every layer's values decoded as stored
    /// ([`decode`]). Made only for a view whose kernels are those, which the unsafe call in
    /// [`Weights::run`] relies on.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2(Vec<Vec<f32>>),
    /// For q8, whatever the kernels: the integer network, which follows the view's kernels
    /// itself.
    #[cfg(feature = "q8")]
    Integer,
}

impl Weights {
    /// The copies the kernels of `model` (its [`ModelView::kernels`]) read.
    fn new(model: &ModelView<'_>) -> Self {
        #[cfg(feature = "q8")]
        if model.tanh_table().is_some() {
            return Self::Integer;
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if model.kernels().avx2() {
            return Self::Avx2(model.layers().map(|layer| decode(&layer.weight)).collect());
        }
        Self::Portable(model.layers().map(|layer| widen(&layer.weight)).collect())
    }

    /// `model`'s layers, with their weights read from these copies where there are any.
    fn layers<'w>(&'w self, model: &ModelView<'w>) -> Vec<Layer<'w>> {
        match self {
            Self::Portable(widened) => model
                .layers()
                .zip(widened)
                .map(|(layer, bytes)| {
                    let (rows, cols) = (layer.weight.rows(), layer.weight.cols());
                    Matrix::new(rows, cols, Dtype::F32, bytes, Vector::default())
                        .map_or(*layer, |weight| Layer { weight, ..*layer })
                })
                .collect(),
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Self::Avx2(_) => model.layers().copied().collect(),
            #[cfg(feature = "q8")]
            Self::Integer => model.layers().copied().collect(),
        }
    }

    /// Runs the layers `net` (from [`Weights::layers`] of `model`) on the contexts embedded in
    /// `lanes`; the logits end in `lanes.x`.
    fn run(&self, model: &ModelView<'_>, net: &[Layer<'_>], lanes: &mut Lanes) {
        // Only q8's integer network reads the model itself.
        #[cfg(not(feature = "q8"))]
        let _ = model;
        let (width, groups) = (lanes.width, lanes.groups());
        let (x, y) = (&mut lanes.x, &mut lanes.y);
        match self {
            Self::Portable(_) => layers(net, width, groups, x, y, portable_group),
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Self::Avx2(decoded) => {
                // SAFETY: `layers_avx2` requires only that the CPU supports AVX2; these weights
                // were made for a view whose kernels are `Kernels::Avx2` or `Avx2Vnni`, which a
                // view holds only when `Kernels::detect` found AVX2 and F16C.
                unsafe { layers_avx2(net, decoded, width, groups, x, y) }
            }
            #[cfg(feature = "q8")]
            Self::Integer => {
                if let Some(table) = model.tanh_table() {
                    lanes.integer(model, table);
                }
            }
        }
    }
}

/// An f16 matrix's values as f32 bytes, for the portable group kernel, which multiplies f32
/// weights about half again as fast as it widens f16 ones; empty for other dtypes (a wrong
/// length for [`Matrix::new`], which keeps the matrix as stored). Widening is exact, so the
/// products are the same bits.
fn widen(matrix: &Matrix<'_>) -> Vec<u8> {
    if matrix.dtype() != Dtype::F16 {
        return Vec::new();
    }
    decode(matrix)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// `matrix`'s values as stored (the i8 scales not applied), row after row.
fn decode(matrix: &Matrix<'_>) -> Vec<f32> {
    let mut values = vec![0.0f32; matrix.rows() * matrix.cols()];
    for (r, row) in values.chunks_exact_mut(matrix.cols().max(1)).enumerate() {
        matrix.row_raw_into(r, row);
    }
    values
}

/// A context's symbols (at most [`MAX_BLOCK_SIZE`], all of one length within a call) as a
/// cache key.
fn key(context: &[u8]) -> u128 {
    let mut bytes = [0u8; MAX_BLOCK_SIZE];
    bytes[..context.len()].copy_from_slice(context);
    u128::from_le_bytes(bytes)
}

/// [`layers`] with the group kernel of [`crate::avx`] (and its bias and `tanh`), on the
/// weights `decoded` as [`Weights::Avx2`] holds them: the same bits as the portable code
/// (see [`crate::avx::matmul_group`]); the tests compare the two, and the batched names with
/// the unbatched ones.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
fn layers_avx2(
    net: &[Layer<'_>],
    decoded: &[Vec<f32>],
    width: usize,
    groups: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
) {
    layers(
        net,
        width,
        groups,
        x,
        y,
        |index, layer, xt, out, activate| {
            crate::avx::matmul_group(&decoded[index], &layer.weight, xt, out);
            crate::avx::finish_group(out, &layer.bias, activate);
        },
    );
}

/// Runs the layers `net` on the first `groups` groups of embedded contexts in `x` (groups `width`
/// apart, transposed), `group(index, layer, inputs, outputs, activate)` computing one layer of
/// one group (`activate`: every layer but the last); the logits end in `x`. Lanes without a
/// context compute on stale values, which nobody reads.
#[inline(always)]
fn layers(
    net: &[Layer<'_>],
    width: usize,
    groups: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
    mut group: impl FnMut(usize, &Layer<'_>, &[[f32; GROUP]], &mut [[f32; GROUP]], bool),
) {
    let mut inputs = net.first().map_or(0, |layer| layer.weight.cols());
    let last = net.len().saturating_sub(1);
    for (index, layer) in net.iter().enumerate() {
        let rows = layer.weight.rows();
        let (xs, ys) = (x.chunks_exact(width), y.chunks_exact_mut(width));
        for (xt, yt) in xs.zip(ys).take(groups) {
            group(index, layer, &xt[..inputs], &mut yt[..rows], index != last);
        }
        core::mem::swap(x, y);
        inputs = rows;
    }
}

/// One layer of one group with the portable kernel: `out = W x + b`, then `tanh` if
/// `activate`; its parameters are those of [`layers`]' `group`.
#[inline(always)]
fn portable_group(
    _index: usize,
    layer: &Layer<'_>,
    xt: &[[f32; GROUP]],
    out: &mut [[f32; GROUP]],
    activate: bool,
) {
    layer.weight.matmul_group(xt, out);
    for (values, bias) in out.iter_mut().zip(layer.bias.iter()) {
        for value in values.iter_mut() {
            *value += bias;
            if activate {
                *value = crate::math::tanh(*value);
            }
        }
    }
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod tests {
    use std::vec::Vec;

    use namegen_model::Rng;

    use super::{GROUP, Kernels, Lanes, ModelView, Weights};

    /// The portable path is the one every host without AVX2 runs; the names tests compare
    /// both paths with the unbatched sampler, and this compares them directly: the logits
    /// after all the layers, on the shipped models and three groups of random inputs.
    #[test]
    fn portable_layers_are_the_avx2_layers_bit_for_bit() {
        if !Kernels::detect().avx2() {
            return;
        }
        let models: [&[u8]; 3] = [
            include_bytes!("../../data/model-f32.safetensors"),
            include_bytes!("../../data/model-f16.safetensors"),
            include_bytes!("../../data/model-i8.safetensors"),
        ];
        let mut rng = Rng::new(47);
        for bytes in models {
            let model = ModelView::parse(bytes).unwrap();
            let (width, groups) = (model.config().max_width(), 3);
            let x: Vec<[f32; GROUP]> = (0..groups * width)
                .map(|_| core::array::from_fn(|_| rng.next_f32() * 2.0 - 1.0))
                .collect();
            let logits = |kernels| {
                let model = model.clone().with_kernels(kernels);
                let weights = Weights::new(&model);
                let net = weights.layers(&model);
                let mut lanes = Lanes::new(&model, groups * GROUP);
                lanes.x.clone_from(&x);
                lanes.entries.resize(groups * GROUP, 0);
                weights.run(&model, &net, &mut lanes);
                lanes.x
            };
            let (want, got) = (logits(Kernels::Portable), logits(Kernels::Avx2));
            let vocab = model.config().vocab_size();
            for (g, (got, want)) in got.chunks(width).zip(want.chunks(width)).enumerate() {
                for (v, (got, want)) in got[..vocab].iter().zip(&want[..vocab]).enumerate() {
                    let (got, want) = (got.map(f32::to_bits), want.map(f32::to_bits));
                    assert_eq!(got, want, "{} group {g} logit {v}", model.dtype());
                }
            }
        }
    }
}
