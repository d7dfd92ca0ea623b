//! Sampling names: temperature, top-k, top-p, prefix, minimum and maximum length, and a seed
//! that names the same list of names on every target.
//!
//! # How one character is drawn (the contract)
//!
//! From a float model's logits `z` (f32, see [`crate::forward`]):
//! 1. While the name is shorter than `min_len`, the end symbol `.` is excluded.
//! 2. Temperature 0 is greedy: the largest logit wins (the lowest index on ties) and no
//!    random number is used.
//! 3. Otherwise each allowed symbol gets the weight `w_i = expf((z_i - m) / T)` (`libm::expf`,
//!    all arithmetic in f32), `m` the largest allowed logit; an excluded symbol weighs 0.
//! 4. Symbols are ranked by weight, larger first, the lower index first on ties. With
//!    `top_k = k > 0` only ranks `0..k` keep their weight. With `top_p = p < 1` a symbol keeps
//!    its weight only while the weights ranked strictly before it sum to less than `p` times
//!    the total kept weight (so the symbol that crosses `p` stays). Every sum runs in index
//!    order, in f32.
//! 5. One draw `u = Rng::next_f32()`, in `[0, 1)`; the target is `u * total`; walking the
//!    symbols in index order and summing the kept weights, the first symbol whose running sum
//!    exceeds the target is chosen (the last kept symbol if rounding leaves none).
//!
//! # A q8 model's draw (integers only)
//!
//! A q8 model's logits `q` are int32 in units of `2^-16` (Q16, `|q| <= 2^24`, the loader's
//! `MAX_LOGIT`), and its draw is integer arithmetic from them to the symbol, on every target,
//! so that a device without an FPU links no soft-float for it (on a Cortex-M3 the f32 softmax
//! cost about 2.5 KB of flash and 7 % of a character's instructions) and every target draws
//! the same symbols. The settings stay f32; the sampler converts them once, from their bits:
//! - the temperature `T > 0` to `k = log2(e) / T` as `K * 2^-s` with a 32-bit `K`, rounded
//!   down (relative error below `2^-31`); where `k >= 2^31` or `k < 2^-32` it saturates to
//!   a value that gives every weight below the same value (see step 3);
//! - `top_p = p` to `P = ceil(p * 2^32)`, exact for `p >= 2^-9` and at least 1.
//!
//! Then:
//! 1. While the name is shorter than `min_len`, the end symbol `.` is excluded.
//! 2. Temperature 0 (either sign) is greedy: the largest logit wins (the lowest index on
//!    ties) and no random number is used.
//! 3. Otherwise, with `m` the largest allowed logit, each allowed symbol's exponent is
//!    `y_i = floor((m - q_i) * K / 2^s)` (base 2, in units of `2^-16`: `(m - q_i) * 2^-16`
//!    nats divided by `T`, in bits) and its weight `w_i = round(2^24 * 2^(-y_i / 2^16))`,
//!    an integer computed within 0.55 of that value (a 16-entry table of `2^(-j/16)` and a
//!    degree-4 polynomial in Q31; 0 from `y_i >= 25 * 2^16`, so symbols below about
//!    `2^-24.5` of the largest weight are never drawn); an excluded symbol weighs 0. The
//!    largest allowed logit weighs exactly `2^24`, and with at most 128 symbols every sum
//!    of weights is below `2^31`, whatever the logits and the temperature.
//! 4. The ranking and `top_k` are the float rule's, on these weights. With `P < 2^32` a
//!    symbol keeps its weight only while `2^32` times the weights ranked strictly before it
//!    is less than `P` times the total kept weight (products below `2^63`).
//! 5. One draw `u = next_u32()`; the target is `floor(u * total / 2^32)`, below `total`;
//!    walking the symbols in index order and summing the kept weights, the first symbol whose
//!    running sum exceeds the target is chosen. Each kept symbol is chosen with probability
//!    `w_i / total` within `2^-32`.
//!
//! # The log-likelihood
//!
//! A name's log-likelihood ([`Name::log_likelihood`], the `log-likelihood` feature) is the sum,
//! in f64 (a q8 model's as below), of the log-probability of each of its symbols (the end
//! symbol too, unless the name was cut) at temperature 1 with nothing masked;
//! [`crate::score()`] gives the same number for the same name. `ln` is `libm::log`.
//! - A float model's: `(z_s - m) - ln(sum_i expf(z_i - m))`, `z_s - m` in f32 and the sum of the
//!   f32 weights of step 3 (at `T = 1`) in f64, in index order.
//! - A q8 model's, from the integers of its draw: per symbol `(q_s - m) * 2^-16 - ln(W *
//!   2^-24)`, where `W` is the sum of the integer weights of step 3 at temperature 1 with
//!   nothing excluded (`m` the largest logit, whose weight is `2^24`). A name adds these up as
//!   `D * 2^-16 - ln(P)`: `D` the exact integer sum of its `q_s - m`, `P` the product of its
//!   `W * 2^-24` in f64, in order (whenever `P` reaches 2^256, its `ln` is set aside and `P`
//!   starts again from 1), so that a name costs one `log`, not one per symbol. It is within
//!   1.5e-5 nats per symbol of the exact log-softmax of the logits: a weight is at most
//!   `2^(2^-16) - 1` (1.06e-5) too large relatively, its exponent rounded down to `2^-16`, and
//!   within 0.55 of that, while `W >= 2^24`; each f64 product adds at most 2^-53 relatively.
//!   A step drawn at temperature 1 reuses its draw's weights (unless the end symbol, excluded,
//!   is above every allowed logit), so its log-likelihood costs a q8 character a
//!   multiplication.
//!
//! Name `k` (counting from 0) of seed `s` draws from [`Rng::with_stream`]`(s, k)`, so a
//! name does not depend on how many names came before it, and the batched generator gives
//! the same names as this one.

use core::fmt;

use heapless::String;
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
use namegen_model::MAX_VOCAB;
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
use namegen_model::rng::unit_f32;
use namegen_model::vocab::VocabError;
use namegen_model::{Context, END_INDEX, Rng};

use crate::forward::{DEFAULT_WIDTH, Forward, Logits, TooWide};
use crate::kernels::Kernels;
use crate::symbols::Symbols;
use crate::view::ModelView;

#[cfg(feature = "q8")]
pub(crate) mod q16;

/// Bytes a [`Name`] holds by default: 32 characters of up to 4 UTF-8 bytes.
pub const DEFAULT_NAME_BYTES: usize = 128;

/// The default `max_len`: about twice the longest name of the default data (15 characters).
pub const DEFAULT_MAX_LEN: usize = 32;

/// How names are drawn. `Default` is plain sampling from the model (temperature 1, no top-k
/// or top-p, no prefix), seed 0, names of 1 to [`DEFAULT_MAX_LEN`] characters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Settings<'p> {
    /// Divides the logits; 0 is greedy. Finite and >= 0.
    pub temperature: f32,
    /// Keep only the `top_k` most likely symbols; 0 keeps all.
    pub top_k: usize,
    /// Keep the most likely symbols up to this much probability mass; in `(0, 1]`, 1 keeps all.
    pub top_p: f32,
    /// Names the list: the same seed and settings give the same names everywhere.
    pub seed: u64,
    /// Every name starts with these characters (which must be in the vocabulary).
    pub prefix: &'p str,
    /// The end symbol is masked until a name has this many characters (prefix included).
    pub min_len: usize,
    /// A name that reaches this many characters ends there and is flagged as cut.
    pub max_len: usize,
}

impl Default for Settings<'_> {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            prefix: "",
            min_len: 1,
            max_len: DEFAULT_MAX_LEN,
        }
    }
}

/// Why a sampler cannot be built: a setting is invalid or does not fit the model or the
/// buffers. Nothing is checked later; a sampler that was built never fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SampleError {
    /// The temperature is negative, NaN or infinite.
    Temperature,
    /// `top_p` is not in `(0, 1]`.
    TopP,
    /// `max_len` is 0, below `min_len`, or longer than a name's byte capacity can always hold.
    Lengths,
    /// A prefix character is not in the model's vocabulary (or is the end symbol).
    Prefix(VocabError),
    /// The prefix is longer than `max_len`.
    PrefixTooLong,
    /// The model is wider than the sampler's buffers.
    TooWide(TooWide),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Temperature => f.write_str("temperature must be a finite number >= 0"),
            Self::TopP => f.write_str("top-p must be in (0, 1]"),
            Self::Lengths => f.write_str(
                "max length must be at least 1, at least the min length, and fit the name buffer",
            ),
            Self::Prefix(e) => write!(f, "prefix: {e}"),
            Self::PrefixTooLong => f.write_str("the prefix is longer than the max length"),
            Self::TooWide(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for SampleError {}

impl From<TooWide> for SampleError {
    fn from(e: TooWide) -> Self {
        Self::TooWide(e)
    }
}

/// One generated name.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Name<const N: usize = DEFAULT_NAME_BYTES> {
    /// The characters, without the end symbol.
    pub text: String<N>,
    /// Characters in `text`.
    pub chars: usize,
    /// True when the name reached `max_len` instead of ending by itself.
    pub cut: bool,
    /// Natural-log likelihood of the name under the model itself (temperature 1, no top-k/p
    /// or length masks), the end symbol included unless the name was cut: the same number
    /// [`crate::score()`] gives for it, computed as the module documentation's "The
    /// log-likelihood" says. Only with the `log-likelihood` feature (a default).
    #[cfg(feature = "log-likelihood")]
    pub log_likelihood: f64,
}

/// Draws names one after another: an endless iterator (use `.take(n)`); name `k` of the
/// iteration is [`Sampler::name_at`]`(k)`.
///
/// `W` is the widest layer its buffers hold (checked against the model by [`Sampler::new`]),
/// `N` the bytes of each [`Name`]. All its state is fixed-size: `2 * W` f32 of activations
/// for the float dtypes (and `2 * W` int8 codes and `W` int32 Q16 logits with the `q8`
/// feature), `W` values for the logits every name starts from, the settings, the model
/// reference and a name counter: 1,904 bytes for [`DefaultSampler`] on 64-bit targets with
/// every dtype (1,280 without `q8`), asserted below 2 KB at compile time.
///
/// Every name's first symbol is drawn after the same context (the start, all `.`), so the
/// sampler runs the model on it once, for its first name, and each name then needs one
/// forward pass per symbol after the first: about 1 in 8 fewer for names of 7 characters.
#[derive(Clone, Debug)]
pub struct Sampler<'m, 'a, 'p, const W: usize = DEFAULT_WIDTH, const N: usize = DEFAULT_NAME_BYTES>
{
    model: &'m ModelView<'a>,
    rules: Rules<'p>,
    forward: Forward<W>,
    /// The logits after the start context (the first `vocab_size` values), once a name needed
    /// them.
    start: Option<Start<W>>,
    next_index: u64,
}

/// The logits after the start context, kept by a [`Sampler`] in its model's kind.
#[derive(Clone, Debug)]
enum Start<const W: usize> {
    /// A float model's.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    Float([f32; W]),
    /// A q8 model's, Q16.
    #[cfg(feature = "q8")]
    Q16([i32; W]),
}

impl<const W: usize> Start<W> {
    /// A copy of `logits`, which must be at most `W` long.
    fn new(logits: Logits<'_>) -> Self {
        match logits {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Logits::Float(z) => {
                let mut start = [0.0; W];
                start[..z.len()].copy_from_slice(z);
                Self::Float(start)
            }
            #[cfg(feature = "q8")]
            Logits::Q16(q) => {
                let mut start = [0; W];
                start[..q.len()].copy_from_slice(q);
                Self::Q16(start)
            }
        }
    }

    /// The first `vocab` logits.
    fn logits(&self, vocab: usize) -> Logits<'_> {
        match self {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Self::Float(z) => Logits::Float(&z[..vocab]),
            #[cfg(feature = "q8")]
            Self::Q16(q) => Logits::Q16(&q[..vocab]),
        }
    }
}

/// [`Settings`] that passed [`validate`], with what a q8 model's draw reads of them in fixed
/// point: what [`InFlight`] draws by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules<'p> {
    /// The settings as given.
    pub(crate) settings: Settings<'p>,
    /// The temperature and `top_p` as the integer draw reads them.
    #[cfg(feature = "q8")]
    fixed: q16::Fixed,
}

/// The sampler for makemore-sized models with the default name capacity.
pub type DefaultSampler<'m, 'a, 'p> = Sampler<'m, 'a, 'p, DEFAULT_WIDTH, DEFAULT_NAME_BYTES>;

/// The sampler's RAM for the default model must stay under 2 KB.
const _: () = assert!(core::mem::size_of::<DefaultSampler<'static, 'static, 'static>>() < 2048);

impl<'m, 'a, 'p, const W: usize, const N: usize> Sampler<'m, 'a, 'p, W, N> {
    /// A sampler for `model` with `settings`, every setting checked.
    pub fn new(model: &'m ModelView<'a>, settings: Settings<'p>) -> Result<Self, SampleError> {
        Forward::<W>::check(model)?;
        let rules = validate(model, &settings, N)?;
        Ok(Self {
            model,
            rules,
            forward: Forward::new(),
            start: None,
            next_index: 0,
        })
    }

    /// Name `index` of this seed and these settings, whatever came before.
    pub fn name_at(&mut self, index: u64) -> Name<N> {
        let name = InFlight::new(self.model, &self.rules, index);
        self.run(name)
    }

    /// A name drawn with the caller's random numbers: a device's hardware generator, a
    /// host's `rand::rng()`, any `rand_core` generator (the settings' `seed` is not used).
    ///
    /// `rng` takes the place of the name's own PCG32 stream: each drawn symbol takes one
    /// `next_u32` (none at temperature 0, none for the prefix), turned into a draw in `[0, 1)`
    /// by [`unit_f32`](namegen_model::rng::unit_f32) as [`Rng::next_f32`] does (a q8 model's
    /// draw reads the word whole); everything else is [`Sampler::name_at`]'s rule. So
    /// `name_from(&mut Rng::with_stream(seed, k))` is exactly `name_at(k)`, and a slow hardware
    /// generator is read once per drawn symbol (about 7 words for a name of the default
    /// model). The generator is borrowed, so the caller keeps it (a HAL's
    /// peripheral); the iterator's counter does not move.
    ///
    /// ```
    /// # use namegen_sampler::{DefaultSampler, ModelView, Settings};
    /// # let model = ModelView::parse(include_bytes!(concat!(
    /// #     env!("CARGO_MANIFEST_DIR"),
    /// #     "/tests/data/model-q8.safetensors"
    /// # )))?;
    /// use namegen_model::Rng;
    /// use namegen_sampler::rand_core::SeedableRng;
    ///
    /// let mut sampler = DefaultSampler::new(&model, Settings { seed: 7, ..Settings::default() })?;
    /// // Any generator: here the pinned PCG32 itself, through the trait.
    /// let mut rng = Rng::seed_from_u64(7);
    /// let name = sampler.name_from(&mut rng);
    /// assert!(name.chars >= 1);
    /// // Name 3 of seed 7 is a draw from stream 3 of seed 7.
    /// assert_eq!(sampler.name_from(&mut Rng::with_stream(7, 3)), sampler.name_at(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name_from<R: rand_core::Rng + ?Sized>(&mut self, rng: &mut R) -> Name<N> {
        let name = InFlight::with_rng(self.model, &self.rules, rng);
        self.run(name)
    }

    /// Draws `name` to its end, from the start logits the first name computed.
    fn run<R: rand_core::Rng>(&mut self, mut name: InFlight<'p, N, R>) -> Name<N> {
        // A new name's context is the start; its logits are computed by the first name only.
        let start = self.start.get_or_insert_with(|| {
            let context = Context::start(self.model.config().block_size());
            Start::new(self.forward.run(self.model, context.ids()))
        });
        let vocab = self.model.config().vocab_size();
        name.advance(start.logits(vocab), self.model, &self.rules);
        while let Some(context) = name.context() {
            let logits = self.forward.run(self.model, context);
            name.advance(logits, self.model, &self.rules);
        }
        name.finish()
    }
}

impl<const W: usize, const N: usize> Iterator for Sampler<'_, '_, '_, W, N> {
    type Item = Name<N>;

    fn next(&mut self) -> Option<Name<N>> {
        let name = self.name_at(self.next_index);
        self.next_index += 1;
        Some(name)
    }
}

/// Checks settings against a model and a name capacity of `bytes`; the rules to draw by.
///
/// The temperature and `top_p` are checked on their bits (for a positive f32 the bits order
/// as the values do), so that a device without an FPU links no soft-float comparison for it.
pub(crate) fn validate<'p>(
    model: &ModelView<'_>,
    s: &Settings<'p>,
    bytes: usize,
) -> Result<Rules<'p>, SampleError> {
    const ONE: u32 = 0x3f80_0000;
    const INFINITY: u32 = 0x7f80_0000;
    let temperature = float_bits(s.temperature);
    // Finite (below infinity once the sign is cleared), and positive or a zero of either sign.
    if (temperature & !(1 << 31)) >= INFINITY || (temperature >> 31 == 1 && temperature << 1 != 0) {
        return Err(SampleError::Temperature);
    }
    // In (0, 1]: a negative value, -0 and NaN all have bits above 1's.
    if !(1..=ONE).contains(&float_bits(s.top_p)) {
        return Err(SampleError::TopP);
    }
    // After the one-byte END the symbols ascend by code point: the last is the longest in UTF-8.
    let vocab = model.vocab();
    let widest = vocab.chars().last().map_or(1, |c| c.len_utf8());
    let fits = s.max_len.checked_mul(widest).is_some_and(|b| b <= bytes);
    if s.max_len == 0 || s.max_len < s.min_len || !fits {
        return Err(SampleError::Lengths);
    }
    let (mut prefix, mut length) = (s.prefix.chars(), 0);
    while let Some(symbol) = next_symbol(&mut prefix, &vocab) {
        symbol.map_err(SampleError::Prefix)?;
        length += 1;
    }
    if length > s.max_len {
        return Err(SampleError::PrefixTooLong);
    }
    Ok(Rules {
        settings: *s,
        #[cfg(feature = "q8")]
        fixed: q16::Fixed::new(s),
    })
}

/// The index of the next character of `prefix` in `vocab`, `None` at its end; an error for a
/// character outside the vocabulary or [`namegen_model::END`], which would end the name. Not
/// inlined: one copy of the UTF-8 decoding and the search serves [`validate`] and every name,
/// which a device's flash notices and its time does not.
#[inline(never)]
fn next_symbol(
    prefix: &mut core::str::Chars<'_>,
    vocab: &Symbols<'_>,
) -> Option<Result<u8, VocabError>> {
    let ch = prefix.next()?;
    Some(match ch {
        namegen_model::END => Err(VocabError::TerminatorInName),
        _ => vocab.encode(ch),
    })
}

/// The bits of `x`, for tests on a setting in integers. Hidden from the optimiser, which would
/// otherwise turn a test for zero on them back into a float comparison: a soft-float call on a
/// part without an FPU, which no q8 build should link.
pub(crate) fn float_bits(x: f32) -> u32 {
    core::hint::black_box(x.to_bits())
}

/// A name being generated: the prefix, then drawn characters until the end symbol or
/// `max_len`, drawing from `R`: its own PCG32 stream, or a caller's generator
/// ([`Sampler::name_from`]). Shared by [`Sampler`] and the batched generator, so both make the
/// same names.
pub(crate) struct InFlight<'p, const N: usize, R = Rng> {
    rng: R,
    name: Name<N>,
    /// The log-likelihood of the symbols so far, written into the name when it is finished.
    #[cfg(feature = "log-likelihood")]
    tally: Tally,
    context: Context,
    prefix: core::str::Chars<'p>,
    done: bool,
}

impl<'p, const N: usize> InFlight<'p, N> {
    /// Name `index` of `rules`, which [`validate`] made for `model`.
    pub(crate) fn new(model: &ModelView<'_>, rules: &Rules<'p>, index: u64) -> Self {
        InFlight::with_rng(model, rules, Rng::with_stream(rules.settings.seed, index))
    }
}

impl<'p, const N: usize, R: rand_core::Rng> InFlight<'p, N, R> {
    /// A name of `rules` (which [`validate`] made for `model`) drawn from `rng`.
    pub(crate) fn with_rng(model: &ModelView<'_>, rules: &Rules<'p>, rng: R) -> Self {
        Self {
            rng,
            name: Name {
                text: String::new(),
                chars: 0,
                cut: false,
                #[cfg(feature = "log-likelihood")]
                log_likelihood: 0.0,
            },
            #[cfg(feature = "log-likelihood")]
            tally: Tally::new(),
            context: Context::start(model.config().block_size()),
            prefix: rules.settings.prefix.chars(),
            done: false,
        }
    }

    /// The context to run the model on next; `None` once the name is finished.
    pub(crate) fn context(&self) -> Option<&[u8]> {
        (!self.done).then(|| self.context.ids())
    }

    /// Takes the next symbol (from the prefix, or drawn from `logits`).
    pub(crate) fn advance(&mut self, logits: Logits<'_>, model: &ModelView<'_>, rules: &Rules<'_>) {
        // Weights for the float draw and the log-likelihood, set (512 bytes) for those only.
        #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
        let mut plain;
        let step = match logits {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Logits::Float(z) => {
                plain = [0.0f32; MAX_VOCAB];
                let plain = &mut plain[..z.len()];
                softmax_weights(z, plain, model.kernels());
                Step::Float { z, plain }
            }
            // The log-likelihood's total comes from the draw, or after it.
            #[cfg(feature = "q8")]
            Logits::Q16(q) => Step::Q16 {
                q,
                #[cfg(feature = "log-likelihood")]
                plain: None,
            },
        };
        // One call, so that the draws inlined into it are inlined once.
        self.advance_with(&step, model, rules);
    }

    /// [`InFlight::advance`] from a [`Step`] already computed (the batched generator keeps
    /// one per context).
    #[inline(always)]
    pub(crate) fn advance_with(
        &mut self,
        step: &Step<'_>,
        model: &ModelView<'_>,
        rules: &Rules<'_>,
    ) {
        let vocab = model.vocab();
        let settings = &rules.settings;
        let drawn = match next_symbol(&mut self.prefix, &vocab) {
            // `validate` refused a prefix with any error.
            Some(symbol) => Drawn::given(symbol.unwrap_or(END_INDEX)),
            None => step.draw(
                rules,
                self.name.chars < settings.min_len,
                &mut self.rng,
                model.kernels(),
            ),
        };
        #[cfg(feature = "log-likelihood")]
        step.add_to(&mut self.tally, &drawn, model.kernels());
        let symbol = drawn.symbol;
        if symbol == END_INDEX {
            self.done = true;
            return;
        }
        // `validate` proved that max_len characters of the widest symbol fit in N bytes.
        let pushed = vocab
            .decode(symbol)
            .ok()
            .is_some_and(|ch| self.name.text.push(ch).is_ok());
        self.name.chars += usize::from(pushed);
        self.context.push(symbol);
        if !pushed || self.name.chars == settings.max_len {
            self.name.cut = true;
            self.done = true;
        }
    }

    /// The finished name.
    pub(crate) fn finish(self) -> Name<N> {
        #[cfg(feature = "log-likelihood")]
        return Name {
            log_likelihood: self.tally.nats(),
            ..self.name
        };
        #[cfg(not(feature = "log-likelihood"))]
        self.name
    }
}

/// `log softmax(z)[symbol]` at temperature 1, its weights computed by `kernels`: the number
/// [`Name::log_likelihood`] and [`crate::score()`] add up for a float model (a q8 model's:
/// [`q16::LogLikelihood`]).
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
pub(crate) fn log_softmax_at(z: &[f32], symbol: u8, kernels: Kernels) -> f64 {
    let mut plain = [0.0f32; MAX_VOCAB];
    let plain = &mut plain[..z.len()];
    softmax_weights(z, plain, kernels);
    log_probability(z, plain, symbol)
}

/// Writes `expf(z_i - max z)` into `plain` (as long as `z`), computed by `kernels`: the
/// temperature-1 weights of `z`.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8", feature = "alloc"))]
pub(crate) fn softmax_weights(z: &[f32], plain: &mut [f32], kernels: Kernels) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    exp_weights(kernels, z, max, 1.0, plain);
}

/// `log softmax(z)[symbol]` from the weights `plain` of `z` ([`softmax_weights`]):
/// `(z_s - max z) - ln(sum)`, the sum of the f32 weights taken in f64 in index order.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
fn log_probability(z: &[f32], plain: &[f32], symbol: u8) -> f64 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = plain.iter().map(|&w| f64::from(w)).sum();
    f64::from(z[usize::from(symbol)] - max) - libm::log(sum)
}

/// A name's log-likelihood as its steps add to it (the module documentation, "The
/// log-likelihood"): a float model's log-probabilities summed in f64 in order, a q8 model's
/// by [`q16::LogLikelihood`]. Shared by the sampler and [`crate::score()`], so that both give
/// the same number for the same name.
pub(crate) struct Tally {
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    float: f64,
    #[cfg(feature = "q8")]
    q16: q16::LogLikelihood,
}

impl Tally {
    /// Nothing added: 0 nats.
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            float: 0.0,
            #[cfg(feature = "q8")]
            q16: q16::LogLikelihood::new(),
        }
    }

    /// Adds a float step's log-probability.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    pub(crate) fn add_float(&mut self, log_probability: f64) {
        self.float += log_probability;
    }

    /// Adds a q8 step: its logits' total `plain` and its symbol's logit `q_s`.
    #[cfg(feature = "q8")]
    pub(crate) fn add_q16(&mut self, plain: &q16::Plain, q_s: i32) {
        self.q16.add(plain, q_s);
    }

    /// The log-likelihood of the steps added, in nats. A model's steps are all of one kind;
    /// the other kind's part is exactly 0 and changes nothing.
    pub(crate) fn nats(&self) -> f64 {
        let nats = 0.0;
        #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
        let nats = nats + self.float;
        #[cfg(feature = "q8")]
        let nats = nats + self.q16.nats();
        nats
    }
}

/// One step's logits as the draw reads them, and what the log-likelihood reads of them. A pure
/// function of the logits, so the batched generator computes it once per context.
#[derive(Clone, Copy)]
pub(crate) enum Step<'s> {
    /// A float model's logits and their temperature-1 weights `expf(z_i - max z)`
    /// ([`softmax_weights`]), which its draw reuses at temperature 1 and the log-likelihood
    /// reads.
    #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
    Float {
        /// The logits.
        z: &'s [f32],
        /// Their temperature-1 weights.
        plain: &'s [f32],
    },
    /// A q8 model's Q16 logits, which its draw reads, and the total of their temperature-1
    /// weights if it was computed ahead (the batched generator keeps one per context);
    /// otherwise the draw leaves it, or [`Step::add_to`] computes it.
    #[cfg(feature = "q8")]
    Q16 {
        /// The Q16 logits.
        q: &'s [i32],
        /// Their temperature-1 total, where computed ahead.
        #[cfg(feature = "log-likelihood")]
        plain: Option<q16::Plain>,
    },
}

/// The symbol a step took, and what its draw left for the log-likelihood.
pub(crate) struct Drawn {
    /// The symbol.
    symbol: u8,
    /// A q8 draw's temperature-1 total, where its weights gave it ([`q16::draw`]).
    #[cfg(all(feature = "q8", feature = "log-likelihood"))]
    plain: Option<q16::Plain>,
}

impl Drawn {
    /// A symbol taken without a draw (the prefix's).
    fn given(symbol: u8) -> Self {
        Self {
            symbol,
            #[cfg(all(feature = "q8", feature = "log-likelihood"))]
            plain: None,
        }
    }
}

impl Step<'_> {
    /// Adds the drawn symbol's `log softmax(z)[symbol]` at temperature 1 to `tally` (a float
    /// step's by [`log_probability`]; a q8 step's by its [`q16::Plain`] total, computed by
    /// `kernels`, the view's, unless it was computed ahead or left by the draw).
    #[cfg(feature = "log-likelihood")]
    fn add_to(&self, tally: &mut Tally, drawn: &Drawn, kernels: Kernels) {
        #[cfg(not(feature = "q8"))]
        let _ = kernels;
        match *self {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Self::Float { z, plain } => tally.add_float(log_probability(z, plain, drawn.symbol)),
            #[cfg(feature = "q8")]
            Self::Q16 { q, plain } => {
                let plain = plain
                    .or(drawn.plain)
                    .unwrap_or_else(|| q16::Plain::of(q, kernels));
                tally.add_q16(&plain, q[usize::from(drawn.symbol)]);
            }
        }
    }

    /// One character by the rule of the logits' kind (the module documentation), the end
    /// symbol excluded if `mask_end`.
    #[inline(always)]
    fn draw<R: rand_core::Rng>(
        &self,
        rules: &Rules<'_>,
        mask_end: bool,
        rng: &mut R,
        kernels: Kernels,
    ) -> Drawn {
        match *self {
            #[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
            Self::Float { z, plain } => {
                Drawn::given(draw(z, plain, &rules.settings, mask_end, rng, kernels))
            }
            #[cfg(feature = "q8")]
            Self::Q16 { q, .. } => {
                let (fixed, top_k) = (&rules.fixed, rules.settings.top_k);
                if fixed.greedy {
                    return Drawn::given(q16::argmax(q, mask_end) as u8);
                }
                let (symbol, _plain) =
                    q16::draw(q, fixed, top_k, mask_end, rng.next_u32(), kernels);
                Drawn {
                    symbol,
                    #[cfg(feature = "log-likelihood")]
                    plain: _plain,
                }
            }
        }
    }
}

/// One character of a float model, as the module documentation specifies.
///
/// `plain` is [`Step::Float`]'s: at temperature 1 with nothing masked those are exactly
/// the weights of step 3 (`x / 1.0 == x`), so they are reused rather than recomputed; other
/// weights are computed by `kernels`.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
pub(crate) fn draw<R: rand_core::Rng>(
    z: &[f32],
    plain: &[f32],
    s: &Settings<'_>,
    mask_end: bool,
    rng: &mut R,
    kernels: Kernels,
) -> u8 {
    let first = usize::from(mask_end);
    let allowed = &z[first..];
    if s.temperature == 0.0 {
        let mut best = 0;
        for (i, &v) in allowed.iter().enumerate() {
            if v > allowed[best] {
                best = i;
            }
        }
        return (best + first) as u8;
    }
    // Transient stack space, not sampler state: the sampler itself stays small.
    let mut weights = [0.0f32; MAX_VOCAB];
    let weights = &mut weights[..z.len()];
    if s.temperature == 1.0 && first == 0 {
        weights.copy_from_slice(plain);
    } else {
        let max = allowed.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        exp_weights(kernels, allowed, max, s.temperature, &mut weights[first..]);
    }
    if s.top_k > 0 {
        keep_top_k(weights, s.top_k);
    }
    if s.top_p < 1.0 {
        let threshold = s.top_p * weights.iter().sum::<f32>();
        let mut kept = [false; MAX_VOCAB];
        for (i, keep) in kept.iter_mut().enumerate().take(z.len()) {
            let mass_before: f32 = (0..z.len())
                .filter(|&j| ranks_before(weights, j, i))
                .map(|j| weights[j])
                .sum();
            *keep = mass_before < threshold;
        }
        for (w, keep) in weights.iter_mut().zip(kept) {
            *w = if keep { *w } else { 0.0 };
        }
    }
    let total: f32 = weights.iter().sum();
    let target = unit_f32(rng.next_u32()) * total;
    let mut running = 0.0f32;
    let mut last = first;
    for (i, &w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
        running += w;
        last = i;
        if running > target {
            return i as u8;
        }
    }
    last as u8
}

/// Zeroes every weight but those of ranks `0..k` ([`ranks_before`]).
#[cfg(any(feature = "f32", feature = "f16", feature = "i8"))]
fn keep_top_k<T: Copy + Default + PartialOrd>(weights: &mut [T], k: usize) {
    let mut kept = [false; MAX_VOCAB];
    for (i, keep) in kept.iter_mut().enumerate().take(weights.len()) {
        *keep = (0..weights.len())
            .filter(|&j| ranks_before(weights, j, i))
            .count()
            < k;
    }
    for (w, keep) in weights.iter_mut().zip(kept) {
        *w = if keep { *w } else { T::default() };
    }
}

/// `out[i] = libm::expf((z[i] - max) / temperature)` for `out` as long as `z` (dividing by 1 is
/// exact, so temperature 1 gives `expf(z[i] - max)`). With [`Kernels::Avx2`], 8 at a time with the
/// same bits (`avx/exp.rs`; its tests compare the two on every argument a draw can have); otherwise
/// one at a time. `kernels` must be a view's ([`ModelView::kernels`]), which holds
/// [`Kernels::Avx2`] (or kernels that build on it) only where the CPU runs it; every caller
/// passes one.
#[cfg(any(feature = "f32", feature = "f16", feature = "i8", feature = "alloc"))]
fn exp_weights(kernels: Kernels, z: &[f32], max: f32, temperature: f32, out: &mut [f32]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if kernels.avx2() {
        // SAFETY: `avx::exp_weights` requires only that the CPU supports AVX2; `kernels` come from
        // a view, whose kernels build on `Kernels::Avx2` only when `Kernels::detect` found AVX2.
        return unsafe { crate::avx::exp_weights(z, max, temperature, out) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = kernels;
    for (w, &v) in out.iter_mut().zip(z) {
        *w = libm::expf((v - max) / temperature);
    }
}

/// Whether symbol `j` ranks before symbol `i`: a larger weight, or an equal one and a lower
/// index.
fn ranks_before<T: PartialOrd>(weights: &[T], j: usize, i: usize) -> bool {
    weights[j] > weights[i] || (weights[j] == weights[i] && j < i)
}
