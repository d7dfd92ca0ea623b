//! The integer arithmetic of the folded dtype q8 (`model/FORMAT.md`, "The q8 dtype"): the
//! requantisation that ends every layer and the limits the loader's validity rules use.
//!
//! Everything here is exact integer arithmetic, so every target computes the same codes and
//! logits. The requantisation is TensorFlow Lite's `MultiplyByQuantizedMultiplier`, bit for
//! bit the default (double-rounding) `arm_nn_requantize` of CMSIS-NN, so a Cortex-M may use
//! either library's kernels on the same file.

/// Entries of the `tanh` table: one per int8 pre-activation code, code `c` at `c + 128`.
pub const TANH_TABLE_LEN: usize = 256;

/// The logits are int32 in units of `2^-LOGIT_FRAC_BITS` (Q16).
pub const LOGIT_FRAC_BITS: u32 = 16;

/// The smallest shift a file may store (a right shift by 31).
pub const MIN_SHIFT: i8 = -31;

/// The largest shift a file may store (a left shift by 30), as TensorFlow Lite's
/// `QuantizeMultiplier` produces.
pub const MAX_SHIFT: i8 = 30;

/// The largest magnitude of a layer's int8 input the loader assumes when it bounds the
/// accumulators: any int8, -128 included, so the bound holds whatever the codes are.
pub const MAX_INPUT: u64 = 128;

/// The largest magnitude of a Q16 logit the loader lets any context reach: 2^24, so that
/// every logit converts to f32 exactly ([`logit_to_f32`]) and stays within 256 nats, and two
/// logits differ by at most 2^25, which bounds the sampler's integer draw.
pub const MAX_LOGIT: u64 = 1 << 24;

/// `acc * multiplier * 2^(shift - 31)`, rounded as TensorFlow Lite's
/// `MultiplyByQuantizedMultiplier` rounds: `acc` is shifted left by `max(shift, 0)`, then
/// multiplied by `multiplier` keeping the high half rounded to nearest with ties toward
/// +infinity (`SaturatingRoundingDoublingHighMul`: its nudge is `2^30`, or `1 - 2^30` for a
/// negative product), then divided by `2^max(-shift, 0)` rounding to nearest with ties away
/// from zero (`RoundingDivideByPOT`).
///
/// Requires `multiplier > 0` and `shift` in [`MIN_SHIFT`]`..=`[`MAX_SHIFT`], which the loader
/// checks for every row of a file (debug builds assert it here), and gives the format's
/// integer when `acc * 2^max(shift, 0)` is within int32, which the loader's overflow bound
/// guarantees for every context. Outside that domain the result is unspecified, but the
/// function still never panics without debug assertions: each shift amount is taken modulo 32
/// and the arithmetic wraps.
// Inlined: it runs once per row of every layer, a few dozen instructions a call would add to.
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: i8) -> i32 {
    debug_assert!(
        multiplier > 0 && (MIN_SHIFT..=MAX_SHIFT).contains(&shift),
        "requantize outside its domain: multiplier {multiplier}, shift {shift}"
    );
    // Masked to 0..=31 rather than trusted, so that no byte makes a 32-bit shift overflow:
    // one AND each, where clamping to the domain costs two compares.
    let shift = i32::from(shift);
    let left = (shift.max(0) & 31) as u32;
    let right = ((-shift).max(0) & 31) as u32;
    let high = rounding_doubling_high_mul(acc.wrapping_shl(left), multiplier);
    rounding_divide_by_pot(high, right)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` for a positive `b`: `a * b / 2^31`, rounded
/// to nearest with ties toward +infinity. Its saturating case (both operands `i32::MIN`)
/// needs a negative `b`; for one the result wraps.
#[inline(always)]
fn rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    // gemmlowp adds `2^30` to a product `p >= 0` and `1 - 2^30` to a negative one, then
    // divides truncating toward zero; for `p < 0` that is `ceil((p + 1 - 2^30) / 2^31)`,
    // which is `floor((p + 2^30) / 2^31)`, as for `p >= 0`. So one flooring shift serves
    // both signs: on a 32-bit core a multiply-accumulate into the nudge and two shifts, no
    // sign test. For `b > 0`, `-2^62 < a * b < 2^62`, so the quotient fits int32.
    ((i64::from(a) * i64::from(b) + (1 << 30)) >> 31) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` (`exponent <= 31`), rounded to nearest
/// with ties away from zero. In 32 bits, as gemmlowp computes it: a 64-bit shift by a variable
/// amount is a library call on 32-bit cores, and this runs once per row of every layer.
#[inline(always)]
fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    // `mask` and `threshold` are below 2^31; the remainder `x & mask` is not negative.
    let mask = ((1u32 << exponent) - 1) as i32;
    let threshold = (mask >> 1) + i32::from(x < 0);
    // The quotient is at most 2^31 - 1 when it is rounded up: `x >> exponent` reaches
    // `i32::MAX` only for exponent 0, whose remainder is 0.
    (x >> exponent) + i32::from((x & mask) > threshold)
}

/// A Q16 logit as the f32 the sampler's scoring (the log-likelihood) takes: `q * 2^-16`, exact
/// for every logit the loader admits (`|q| <=` [`MAX_LOGIT`] `= 2^24`, which f32 holds exactly).
pub fn logit_to_f32(q: i32) -> f32 {
    const UNIT: f32 = 1.0 / (1u32 << LOGIT_FRAC_BITS) as f32;
    q as f32 * UNIT
}

/// TensorFlow Lite's `QuantizeMultiplier`: the positive real `real` as
/// `multiplier * 2^(shift - 31)` with `multiplier` in `[2^30, 2^31)`, what a writer stores
/// for a row whose real multiplier ([`requantize`]'s `acc` to output code) is `real`
/// (`model/FORMAT.md`, "What the numbers mean"). `real = q * 2^shift` with `q` in
/// `[0.5, 1)` (`frexp`), `multiplier = round(q * 2^31)` to nearest, ties away from zero, and
/// a `multiplier` rounded up to `2^31` becomes `2^30` with `shift + 1`.
///
/// `None` when `real` is not finite and positive, or needs a shift outside
/// [`MIN_SHIFT`]`..=`[`MAX_SHIFT`] (TensorFlow Lite would flush a tiny one to zero and a file
/// cannot store a multiplier of 0): the writer refuses such a row rather than store another
/// number.
pub fn quantize_multiplier(real: f64) -> Option<(i32, i8)> {
    if !(real.is_finite() && real > 0.0) {
        return None;
    }
    let (q, mut shift) = libm::frexp(real);
    let mut multiplier = libm::round(q * (1u64 << 31) as f64) as i64;
    if multiplier == 1 << 31 {
        multiplier /= 2;
        shift += 1;
    }
    let shift = i8::try_from(shift)
        .ok()
        .filter(|s| (MIN_SHIFT..=MAX_SHIFT).contains(s))?;
    Some((i32::try_from(multiplier).ok()?, shift))
}

/// The `tanh` table of a model whose hidden pre-activation codes cover `[-range, range]`
/// (scale `range / 127`): entry `k + 128` is `round(127 tanh(k range / 127))` (ties away from
/// zero) for `k` in `-128..=127`, within `-127..=127` (`model/FORMAT.md`).
pub fn tanh_table(range: f64) -> [i8; TANH_TABLE_LEN] {
    let step = range / 127.0;
    let mut table = [0i8; TANH_TABLE_LEN];
    for (entry, k) in table.iter_mut().zip(-128i32..) {
        let code = libm::round(127.0 * libm::tanh(f64::from(k) * step));
        *entry = code.clamp(-127.0, 127.0) as i8;
    }
    table
}

/// `(numerator / divisor, numerator % divisor)` for a `divisor` in `1..2^24`, by long division
/// in 8-bit digits, so that every step divides below `2^32`: one instruction on a Cortex-M3,
/// where dividing a `u64` links a 900-byte library routine. The q8 draw's fixed-point settings
/// and the firmware's decimal parser, both on the device path, divide with it. Panics if
/// `divisor` is 0.
pub fn divide_wide(numerator: u64, divisor: u32) -> (u64, u32) {
    debug_assert!(divisor < 1 << 24, "8-bit digits need a divisor below 2^24");
    let (mut quotient, mut remainder) = (0u64, 0u32);
    for digit in numerator.to_be_bytes() {
        let partial = (remainder << 8) | u32::from(digit);
        quotient = (quotient << 8) | u64::from(partial / divisor);
        remainder = partial % divisor;
    }
    (quotient, remainder)
}
