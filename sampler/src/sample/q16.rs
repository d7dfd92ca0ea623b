//! The draw of a q8 model: its Q16 logits to one symbol in integer arithmetic, as the module
//! documentation of [`crate::sample`] specifies ("A q8 model's draw"), and the settings in the
//! fixed point it reads.
//!
//! No floating-point operation happens in the draw, not even on the f32 settings (their bits
//! are decoded as integers), so a device without an FPU links no soft-float for a q8 model and
//! every target draws the same symbols. Only the log-likelihood, from the same integers, ends
//! in one f64 `log` per name ([`LogLikelihood`]).

use namegen_model::MAX_VOCAB;
use namegen_model::q8::{divide_wide, logit_to_f32};

// Every weight at most 1, so MAX_VOCAB of them sum below 2^31.
const _: () = assert!(MAX_VOCAB << WEIGHT_BITS <= 1 << 31);

use super::{Settings, float_bits, ranks_before};
use crate::Kernels;

/// The fraction bits of a weight: the largest allowed logit weighs `2^WEIGHT_BITS`, and
/// [`MAX_VOCAB`] weights sum below `2^31`.
pub(crate) const WEIGHT_BITS: u32 = 24;

/// Exponents `y` (in units of `2^-16`) from which every weight is 0: `2^24 * 2^-25` rounds to 0.
pub(crate) const ZERO_FROM: u64 = ((WEIGHT_BITS + 1) as u64) << 16;

/// `log2(e) * 2^63`, rounded to nearest.
const LOG2E_Q63: u64 = 13_306_513_097_844_322_492;

/// `ln(2) * 2^31`, rounded to nearest.
pub(crate) const LN2_Q31: u64 = 1_488_522_236;

/// 1 in Q31, the fixed point of [`exp2_neg`]'s steps.
pub(crate) const ONE_Q31: u64 = 1 << 31;

/// `2^(-j/16) * 2^31` rounded to nearest, for `j` in `0..16`.
pub(crate) const EXP2_SIXTEENTHS: [u32; 16] = [
    2_147_483_648,
    2_056_437_387,
    1_969_251_188,
    1_885_761_398,
    1_805_811_301,
    1_729_250_827,
    1_655_936_265,
    1_585_730_000,
    1_518_500_250,
    1_454_120_821,
    1_392_470_869,
    1_333_434_672,
    1_276_901_417,
    1_222_764_986,
    1_170_923_762,
    1_121_280_436,
];

/// [`Fixed`] of temperature 1 (what [`Fixed::new`] makes of it): `log2(e)` rounded down to 32
/// significant bits, `log2(e) * 2^31` of [`LOG2E_Q63`]. The log-likelihood's weights.
const PLAIN: Fixed = Fixed {
    greedy: false,
    scale: (LOG2E_Q63 >> 32) as u32,
    shift: 31,
    top_p: 1 << 32,
};

/// The temperature and `top_p` of some [`Settings`] in the fixed point the draw reads,
/// converted once from their f32 bits (the settings must have passed
/// [`super::validate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fixed {
    /// Temperature 0 (either sign): the largest logit wins.
    pub(crate) greedy: bool,
    /// `log2(e) / temperature` is `scale * 2^-shift`.
    pub(crate) scale: u32,
    /// See `scale`; at most 63.
    pub(crate) shift: u32,
    /// `ceil(top_p * 2^32)`: in `1..=2^32`, `2^32` for `top_p = 1`.
    pub(crate) top_p: u64,
}

impl Fixed {
    /// The fixed-point forms of `settings`' temperature and `top_p`.
    pub(crate) fn new(settings: &Settings<'_>) -> Self {
        let temperature = float_bits(settings.temperature) & !(1 << 31);
        let (scale, shift) = inverse_temperature(temperature);
        Self {
            greedy: temperature == 0,
            scale,
            shift,
            top_p: top_p_q32(float_bits(settings.top_p)),
        }
    }
}

/// `(significand, exponent)` of the positive, finite f32 whose bits are `bits`, the
/// significand normalised into `[2^23, 2^24)`: the value is `significand * 2^exponent`.
fn decode(bits: u32) -> (u32, i32) {
    let biased = (bits >> 23) as i32;
    let fraction = bits & ((1 << 23) - 1);
    let (significand, exponent) = if biased == 0 {
        (fraction, -149)
    } else {
        (fraction | 1 << 23, biased - 150)
    };
    let normalise = significand.leading_zeros() - 8;
    (significand << normalise, exponent - normalise as i32)
}

/// `(scale, shift)` with `scale * 2^-shift` equal to `log2(e) / T` rounded down to 32
/// significant bits (relative error below `2^-31`), for the temperature `T > 0` whose bits are
/// `bits` (the sign cleared; anything for 0, which is greedy). Outside what a shift of `0..=63`
/// holds the scale saturates without changing a weight: `(u32::MAX, 0)` when `log2(e) / T >=
/// 2^31` (every exponent of a logit below the largest is then at least `2^31 - 1` units, so its
/// weight is 0 either way), `(0, 0)` when it is below `2^-32` (every exponent is below one unit,
/// so it is 0 either way).
fn inverse_temperature(bits: u32) -> (u32, u32) {
    if bits == 0 {
        return (0, 0);
    }
    let (significand, exponent) = decode(bits);
    // In (2^39, 2^41): 41 significant bits at most, of which the top 32 are kept.
    let (quotient, _) = divide_wide(LOG2E_Q63, significand);
    let dropped = 32 - quotient.leading_zeros();
    let scale = (quotient >> dropped) as u32;
    match 63 + exponent - dropped as i32 {
        shift if shift < 0 => (u32::MAX, 0),
        shift if shift > 63 => (0, 0),
        shift => (scale, shift as u32),
    }
}

/// `ceil(p * 2^32)` for the `top_p` `p` in `(0, 1]` whose bits are `bits`: exact for
/// `p >= 2^-9`, and at least 1, so the most likely symbol always stays.
fn top_p_q32(bits: u32) -> u64 {
    let (significand, exponent) = decode(bits);
    let significand = u64::from(significand);
    // p * 2^32 = significand * 2^(exponent + 32), with exponent + 32 <= 9 for p <= 1.
    match exponent + 32 {
        left @ 0.. => significand << left,
        right if right > -32 => (significand + (1 << -right) - 1) >> -right,
        _ => 1,
    }
}

/// `2^24 * 2^(-y / 2^16)` to the nearest integer, within 0.55 of it: the weight of a logit
/// whose exponent below the largest is `y / 2^16` (base 2). 0 from `y = 25 * 2^16` on.
///
/// `2^-y` splits into `2^-n` (a shift), `2^(-j/16)` (a 16-entry table) and `e^-x` for the
/// rest, `x = r ln 2 < ln 2 / 16`, by its Taylor polynomial of degree 4 (error below
/// `x^5 / 120 < 1.3e-9`), all in Q31.
pub(crate) fn exp2_neg(y: u64) -> u32 {
    if y >= ZERO_FROM {
        return 0;
    }
    let whole = (y >> 16) as u32;
    let sixteenth = (y >> 12) & 15;
    let rest = y & 0xfff;
    let x = (rest * LN2_Q31) >> 16;
    // e^-x = 1 - x (1 - x (1/2 - x (1/6 - x / 24))), every step within (0, 1].
    let step = |c: u64, inner: u64| c - ((x * inner) >> 31);
    let e = step(
        ONE_Q31,
        step(ONE_Q31, step(ONE_Q31 / 2, step(ONE_Q31 / 6, ONE_Q31 / 24))),
    );
    let product = u64::from(EXP2_SIXTEENTHS[sixteenth as usize]) * e;
    // Q62 to the weight's fixed point, divided by 2^whole, rounded to nearest: a shift by
    // 32 + `shift` (in 6..=30), so from the product's high word alone, whose low word cannot
    // change the rounded result. A 32-bit core then shifts one word, without a 64-bit call.
    let shift = 62 - WEIGHT_BITS + whole - 32;
    let high = (product >> 32) as u32;
    (high + (1 << (shift - 1))) >> shift
}

/// The largest of the Q16 logits `q` (the lowest index on ties), the end symbol excluded if
/// `mask_end`: the greedy draw, and where the weights are measured from.
pub(crate) fn argmax(q: &[i32], mask_end: bool) -> usize {
    let first = usize::from(mask_end);
    let allowed = &q[first..];
    // The largest so far kept in a register: one compare per logit, no reload.
    let (mut best, mut largest) = (0, allowed[0]);
    for (i, &v) in allowed.iter().enumerate() {
        if v > largest {
            (best, largest) = (i, v);
        }
    }
    best + first
}

/// `out[i] = exp2_neg((max - q[i]) * 2^-16 log2(e) / T)`, the weights of the logits `q` (none
/// above `max`) at the temperature of `fixed`, for `out` as long as `q`. With the AVX2 kernels
/// 4 at a time, with [`Kernels::Avx512Vnni`] 8 at a time (`avx/q16.rs`, the same integers; its
/// tests compare them), otherwise one at a time. `kernels` must be a view's
/// ([`crate::ModelView::kernels`]), which holds those kernels only where the CPU runs them.
fn exp_weights(kernels: Kernels, q: &[i32], max: i32, fixed: &Fixed, out: &mut [u32]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        let (scale, shift) = (fixed.scale, fixed.shift);
        if kernels == Kernels::Avx512Vnni {
            // SAFETY: a view holds these kernels only where `Kernels::detect` found their
            // instruction sets, AVX2 and AVX-512 F among them.
            return unsafe { crate::avx::q16::weights_avx512(q, max, scale, shift, out) };
        }
        if kernels.avx2() {
            // SAFETY: `avx::q16::weights` requires only that the CPU supports AVX2; a view's
            // kernels build on `Kernels::Avx2` only when `Kernels::detect` found AVX2.
            return unsafe { crate::avx::q16::weights(q, max, scale, shift, out) };
        }
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = kernels;
    for (w, &v) in out.iter_mut().zip(q) {
        *w = exp2_neg(y(max.abs_diff(v), fixed));
    }
}

/// The exponent `y` of step 3 of a logit `below` units under the largest, at the temperature
/// of `fixed`: `floor(below * scale / 2^shift)`.
fn y(below: u32, fixed: &Fixed) -> u64 {
    // At most 2^25 (the loader's MAX_LOGIT on either side), times a scale below 2^32.
    (u64::from(below) * u64::from(fixed.scale)) >> fixed.shift
}

/// Room for a step's weights on the stack, of which [`zeros`] clears only those in use: an
/// array of [`MAX_VOCAB`] would clear all 512 bytes for every symbol drawn.
type Weights = heapless::Vec<u32, MAX_VOCAB>;

/// The first `len` of `weights`, 0; panics if `len` is above [`MAX_VOCAB`] (the loader admits
/// no larger vocabulary).
fn zeros(weights: &mut Weights, len: usize) -> &mut [u32] {
    let _ = weights.resize(len, 0);
    &mut weights[..len]
}

/// The total of a step's temperature-1 weights (every symbol's, step 3 of the draw at `T = 1`
/// with nothing excluded) and the largest logit they are measured from: what a q8 model's
/// log-likelihood reads (the module documentation of [`crate::sample`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plain {
    /// The largest logit, whose weight is `2^WEIGHT_BITS`.
    max: i32,
    /// The sum of the weights: at least `2^WEIGHT_BITS`, below `2^31`.
    total: u32,
}

impl Plain {
    /// Of the logits `q` (at least one), the weights computed by `kernels` (a view's).
    pub(crate) fn of(q: &[i32], kernels: Kernels) -> Self {
        let max = q[argmax(q, false)];
        let mut weights = Weights::new();
        let weights = zeros(&mut weights, q.len());
        exp_weights(kernels, q, max, &PLAIN, weights);
        Self {
            max,
            total: weights.iter().sum(),
        }
    }
}

/// A q8 name's log-likelihood as its steps add to it: `sum (q_s - max) * 2^-16 - ln(prod
/// total * 2^-24)` over its steps' [`Plain`] totals and the logits `q_s` of its symbols (the
/// module documentation of [`crate::sample`]). The differences add up exactly as integers and
/// the totals multiply in f64, so that a name costs one `log`, not one per symbol: the
/// characters of a q8 name are cheap enough for a `log` each to show.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogLikelihood {
    /// The sum of `q_s - max`: each within 2^25 in magnitude (the loader bounds each logit by
    /// `MAX_LOGIT`, 2^24), so the sum is exact in f64 for fewer than 2^28 steps, far more than
    /// any name has ([`crate::score()`] takes at most 257).
    differences: i64,
    /// The product of `total * 2^-24` since the last `log` was taken: each factor in
    /// `[1, MAX_VOCAB)`, so the product stays below [`LogLikelihood::FOLD`] times 2^7.
    product: f64,
    /// The `log`s of the products folded so far.
    folded: f64,
}

impl LogLikelihood {
    /// The product at which its `log` is taken and it starts again from 1: 2^256, far from
    /// f64's overflow (each factor is below 2^7), and far beyond the product of a usual name.
    const FOLD: f64 = f64::from_bits((1023 + 256) << 52);

    /// Nothing added: 0 nats.
    pub(crate) const fn new() -> Self {
        Self {
            differences: 0,
            product: 1.0,
            folded: 0.0,
        }
    }

    /// Adds the step whose logits have the total `plain` and whose symbol's logit is `q_s`.
    pub(crate) fn add(&mut self, plain: &Plain, q_s: i32) {
        self.differences += i64::from(q_s - plain.max);
        self.product *= f64::from(plain.total) / f64::from(1u32 << WEIGHT_BITS);
        if self.product >= Self::FOLD {
            self.folded += libm::log(self.product);
            self.product = 1.0;
        }
    }

    /// The log-likelihood of the steps added, in nats: `differences * 2^-16 - (folded +
    /// ln(product))`. Both products are exact; with nothing added, 0 and no `log`.
    pub(crate) fn nats(&self) -> f64 {
        let unit = f64::from(logit_to_f32(1));
        let logs = match self.product == 1.0 {
            true => self.folded,
            false => self.folded + libm::log(self.product),
        };
        self.differences as f64 * unit - logs
    }
}

/// One symbol from the Q16 logits `q` of a q8 model at a temperature above 0 (`fixed` not
/// greedy): the contract of the module documentation, with `fixed` from the settings, their
/// `top_k`, the end symbol excluded if `mask_end`, and `word` the draw's random `u32`; the
/// weights computed by `kernels` (a view's, [`crate::ModelView::kernels`]). Not generic over
/// the generator, so one copy serves every caller.
///
/// Also returns the step's [`Plain`] total where the draw's weights give it for one more
/// weight at most (temperature 1, and the end symbol, if excluded, not above the largest
/// allowed logit), so that the log-likelihood does not compute them again.
pub(crate) fn draw(
    q: &[i32],
    fixed: &Fixed,
    top_k: usize,
    mask_end: bool,
    word: u32,
    kernels: Kernels,
) -> (u8, Option<Plain>) {
    let first = usize::from(mask_end);
    let allowed = &q[first..];
    let best = argmax(q, mask_end);
    // Transient stack space, not sampler state: the sampler itself stays small.
    let mut weights = Weights::new();
    let weights = zeros(&mut weights, q.len());
    exp_weights(kernels, allowed, q[best], fixed, &mut weights[first..]);
    let uncut: u32 = weights.iter().sum();
    #[cfg(feature = "log-likelihood")]
    let plain =
        (fixed.scale == PLAIN.scale && fixed.shift == PLAIN.shift && q[0] <= q[best]).then(|| {
            // The end symbol's weight, 0 in `weights` when excluded, measured from the same
            // largest logit, which is then the largest of all.
            let end = match mask_end {
                true => exp2_neg(y(q[best].abs_diff(q[0]), &PLAIN)),
                false => 0,
            };
            Plain {
                max: q[best],
                total: uncut + end,
            }
        });
    #[cfg(not(feature = "log-likelihood"))]
    let plain = None;
    if top_k > 0 {
        // Every mass before a symbol is below 2^31, so `u64::MAX` keeps them all.
        cut(weights, top_k, u64::MAX);
    }
    // Each weight is at most 2^24 and there are at most 2^7, so sums stay below 2^31 and a sum
    // times `top_p` (at most 2^32) below 2^63.
    if fixed.top_p < 1 << 32 {
        let threshold = fixed.top_p * u64::from(weights.iter().sum::<u32>());
        cut(weights, usize::MAX, threshold);
    }
    // The largest logit's weight is 1 and survives top-k and top-p, so `total > target`.
    let total: u32 = match top_k > 0 || fixed.top_p < 1 << 32 {
        true => weights.iter().sum(),
        false => uncut,
    };
    let target = ((u64::from(word) * u64::from(total)) >> 32) as u32;
    let mut running = 0;
    for (i, &w) in weights.iter().enumerate() {
        running += w;
        if running > target {
            return (i as u8, plain);
        }
    }
    (best as u8, plain)
}

/// Zeroes the weight of every symbol with `top_k` or more symbols ranked before it
/// ([`ranks_before`]) or with weights ranked before it that sum to `m` with `m * 2^32` not
/// below `threshold`: top-k and top-p by one loop. A symbol's rank and the mass before it are
/// taken from the weights as they were on entry.
fn cut(weights: &mut [u32], top_k: usize, threshold: u64) {
    let mut kept = [false; MAX_VOCAB];
    for (i, keep) in kept.iter_mut().enumerate().take(weights.len()) {
        let (mut rank, mut mass) = (0, 0u32);
        for j in 0..weights.len() {
            if ranks_before(weights, j, i) {
                rank += 1;
                mass += weights[j];
            }
        }
        *keep = rank < top_k && u64::from(mass) << 32 < threshold;
    }
    for (w, &keep) in weights.iter_mut().zip(&kept) {
        *w = if keep { *w } else { 0 };
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use namegen_model::MAX_VOCAB;
    use namegen_model::q8::MAX_LOGIT;

    use super::{
        Fixed, WEIGHT_BITS, ZERO_FROM, argmax, draw, exp2_neg, inverse_temperature, top_p_q32,
    };
    use crate::Kernels;
    use crate::sample::Settings;

    /// `2^24 * 2^(-y / 2^16)` in f64.
    fn exact_weight(y: u64) -> f64 {
        f64::from(1u32 << WEIGHT_BITS) * (-(y as f64) / 65536.0 * core::f64::consts::LN_2).exp()
    }

    #[test]
    fn weights_are_within_0_55_of_exp_for_every_fraction_and_shift() {
        let mut worst = 0.0f64;
        // Every fraction at every whole exponent that leaves a nonzero weight, and past it.
        for y in 0..ZERO_FROM + (1 << 16) {
            let got = f64::from(exp2_neg(y));
            let want = exact_weight(y);
            worst = worst.max((got - want).abs());
            assert!((got - want).abs() <= 0.55, "y {y}: {got} against {want}");
        }
        assert!(worst > 0.45, "the bound is tight: worst {worst}");
        assert_eq!(exp2_neg(0), 1 << WEIGHT_BITS);
        for y in [ZERO_FROM, ZERO_FROM + 1, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(exp2_neg(y), 0, "y {y}");
        }
    }

    /// `log2(e) / T` in f64 against the scale, for temperatures of every class: the smallest
    /// subnormal, subnormals, normals across the range, 1, powers of two, the largest.
    #[test]
    fn the_inverse_temperature_is_rounded_down_to_32_bits_or_saturates() {
        let mut bits: Vec<u32> = vec![1, 2, 3, 0x7f_ffff, 0x80_0000, 0x3f80_0000, 0x7f7f_ffff];
        bits.extend((0..2000u32).map(|i| i.wrapping_mul(0x9e37_79b9) % 0x7f80_0000));
        bits.extend((1..255u32).map(|e| e << 23));
        for b in bits.into_iter().filter(|&b| b != 0) {
            let t = f64::from(f32::from_bits(b));
            let k = core::f64::consts::LOG2_E / t;
            let (scale, shift) = inverse_temperature(b);
            match (scale, shift) {
                (u32::MAX, 0) => assert!(k >= 2f64.powi(31) * (1.0 - 1e-9), "T {t}: k {k}"),
                (0, 0) => assert!(k < 2f64.powi(-32), "T {t}: k {k}"),
                _ => {
                    let got = f64::from(scale) * 2f64.powi(-(shift as i32));
                    assert!(scale >= 1 << 31, "T {t}: 32 significant bits");
                    assert!(
                        got <= k && (k - got) / k < 2f64.powi(-31),
                        "T {t}: {got} vs {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn top_p_is_rounded_up_to_a_multiple_of_2_to_the_minus_32() {
        let mut bits: Vec<u32> = vec![1, 2, 0x7f_ffff, 0x80_0000, 0x3f80_0000, 0x3f7f_ffff];
        bits.extend((0..3000u32).map(|i| 1 + i.wrapping_mul(0x9e37_79b9) % 0x3f80_0000));
        for b in bits {
            let p = f64::from(f32::from_bits(b));
            // p * 2^32 is exact in f64 (24 significant bits), so its ceiling is too.
            let want = (p * 2f64.powi(32)).ceil() as u64;
            assert_eq!(top_p_q32(b), want, "p {p}");
        }
        assert_eq!(top_p_q32(1.0f32.to_bits()), 1 << 32);
    }

    fn fixed(temperature: f32, top_p: f32) -> Fixed {
        Fixed::new(&Settings {
            temperature,
            top_p,
            ..Settings::default()
        })
    }

    /// The symbol each of `words` draws from `q`, as the sampler draws it.
    fn draws(q: &[i32], fixed: &Fixed, top_k: usize, mask_end: bool, words: &[u32]) -> Vec<u8> {
        words
            .iter()
            .map(|&w| match fixed.greedy {
                true => argmax(q, mask_end) as u8,
                false => draw(q, fixed, top_k, mask_end, w, Kernels::Portable).0,
            })
            .collect()
    }

    #[test]
    fn the_extremes_keep_every_sum_in_range() {
        let max = MAX_LOGIT as i32;
        let words = [0, 1, 1 << 31, u32::MAX - 1, u32::MAX];
        // The most symbols, all equal: every weight 2^24, the total 2^31, uniform.
        let equal = [max; MAX_VOCAB];
        for t in [1.0, f32::MAX, f32::from_bits(1)] {
            let symbols = draws(&equal, &fixed(t, 1.0), 0, false, &words);
            let want: Vec<u8> = words
                .iter()
                .map(|&u| ((u64::from(u) * 128) >> 32) as u8)
                .collect();
            assert_eq!(symbols, want, "T {t}");
        }
        // The widest spread the loader admits: one logit at +MAX_LOGIT, the others at -MAX_LOGIT.
        let mut spread = [-max; MAX_VOCAB];
        spread[77] = max;
        // A tiny temperature leaves the largest alone; so does 1 (2^25 units is 512 nats).
        for t in [f32::from_bits(1), 1e-30, 1.0, 10.0] {
            assert_eq!(
                draws(&spread, &fixed(t, 1.0), 0, false, &words),
                [77; 5],
                "T {t}"
            );
        }
        // A huge temperature makes every weight 1 again (2^25 units over 3e38 are no bits).
        let uniform = draws(&spread, &fixed(f32::MAX, 1.0), 0, false, &words);
        assert_eq!(uniform, [0, 0, 64, 127, 127]);
        // The end symbol masked: never drawn, even as the only symbol with any weight.
        let mut end_first = [-max; 5];
        end_first[0] = max;
        assert_eq!(
            draws(&end_first, &fixed(1.0, 1.0), 0, true, &words),
            [1, 1, 3, 4, 4]
        );
        assert_eq!(draws(&end_first, &fixed(0.0, 1.0), 0, true, &words), [1; 5]);
        assert_eq!(
            draws(&end_first, &fixed(-0.0, 1.0), 0, false, &words),
            [0; 5]
        );
        // The tiniest top_p keeps the most likely symbol alone, the lowest index on ties.
        let tiny = fixed(1.0, f32::from_bits(1));
        assert_eq!(tiny.top_p, 1);
        assert_eq!(draws(&equal, &tiny, 0, false, &words), [0; 5]);
        assert_eq!(draws(&equal, &tiny, 0, true, &words), [1; 5]);
        assert_eq!(draws(&spread, &tiny, 0, false, &words), [77; 5]);
    }

    /// The draw's weights give the log-likelihood's total exactly where it says they do: at
    /// temperature 1, whatever top-k and top-p cut, the end symbol excluded or not, unless it
    /// is above every allowed logit; never at another temperature.
    #[cfg(feature = "log-likelihood")]
    #[test]
    fn the_draw_leaves_the_temperature_1_total_where_its_weights_give_it() {
        use namegen_model::Rng;

        use super::{PLAIN, Plain};

        assert_eq!(fixed(1.0, 1.0), PLAIN);
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            // Few distinct logits, so that the end symbol often ties with the largest.
            let len = 2 + rng.below(40) as usize;
            let q: Vec<i32> = (0..len).map(|_| (rng.below(16) as i32 - 8) << 17).collect();
            let plain = Plain::of(&q, Kernels::Portable);
            let above = q[0] > q[1..].iter().copied().max().unwrap();
            for (t, top_k, top_p) in [(1.0, 0, 1.0), (1.0, 3, 0.5), (0.5, 0, 1.0), (2.0, 1, 1.0)] {
                for mask_end in [false, true] {
                    let (_, left) = draw(
                        &q,
                        &fixed(t, top_p),
                        top_k,
                        mask_end,
                        rng.next_u32(),
                        Kernels::Portable,
                    );
                    let expected = (t == 1.0 && !(mask_end && above)).then_some(plain);
                    assert_eq!(
                        left, expected,
                        "T {t}, top-k {top_k}, mask {mask_end}: {q:?}"
                    );
                }
            }
        }
    }

    /// A name's log-likelihood, with one `log` for all its steps, is the sum of each step's
    /// `(q_s - max) 2^-16 - ln(total 2^-24)` within f64 rounding, also past the products it
    /// folds (the largest totals fold one about every 40 steps).
    #[test]
    fn a_names_log_likelihood_is_the_sum_of_its_steps() {
        use namegen_model::Rng;

        use super::{LogLikelihood, Plain};

        let mut rng = Rng::new(11);
        for steps in [0, 1, 7, 40, 300] {
            let mut tally = LogLikelihood::new();
            let mut want = 0.0f64;
            for _ in 0..steps {
                let max = rng.below(1 << 21) as i32 - (1 << 20);
                let total = (1 << WEIGHT_BITS) + rng.below(127 << WEIGHT_BITS);
                let q_s = max - rng.below(1 << 22) as i32;
                tally.add(&Plain { max, total }, q_s);
                let weight = f64::from(total) / f64::from(1u32 << WEIGHT_BITS);
                want += f64::from(q_s - max) / 65536.0 - libm::log(weight);
            }
            let got = tally.nats();
            assert!(
                (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{steps} steps: {got} against {want}"
            );
            assert_eq!(tally.folded != 0.0, steps == 300, "{steps} steps");
        }
    }

    #[test]
    fn top_k_and_top_p_cut_by_rank() {
        // ln 2 apart in Q16 (45,426.09 units): weights 2^24, 2^23, 2^22 and 2^21, within 2^-15.
        let ln2 = 45_426;
        let q = [0, 3 * ln2, 2 * ln2, ln2, 0];
        let t1 = fixed(1.0, 1.0);
        // Index 1 weighs 8, 2 weighs 4, 3 weighs 2, 0 and 4 weigh 1 (of 16).
        let words: Vec<u32> = (0..16).map(|i| (i << 28) + (1 << 27)).collect();
        let all = draws(&q, &t1, 0, false, &words);
        assert_eq!(all, [0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4]);
        let top2 = draws(&q, &t1, 2, false, &words);
        let two = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
        assert_eq!(top2, two);
        // Half the mass is before index 2: below 0.55 of the total, not below 0.45.
        assert_eq!(draws(&q, &fixed(1.0, 0.55), 0, false, &words), two);
        assert_eq!(draws(&q, &fixed(1.0, 0.45), 0, false, &words), [1; 16]);
    }
}
