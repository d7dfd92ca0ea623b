//! The integer arithmetic of the folded dtype q8 (`model/FORMAT.md`, "The q8 dtype"): the
//! requantisation that ends every layer, how a file stores each row's multiplier, shift and
//! bias, and the limits the loader's validity rules use.
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

/// Bits of TensorFlow Lite's 32-bit multiplier that a file does not store: they are zero.
/// A file stores each row's multiplier as I16, the high 16 bits ([`widen_multiplier`]).
pub const MULTIPLIER_LOW_BITS: u32 = 16;

/// Bits of a row's `bias_shift` word below its bias: the shift, as a two's complement byte
/// ([`bias_shift`]).
pub const SHIFT_BITS: u32 = 8;

/// The smallest bias in accumulator units a `bias_shift` word holds: `-2^23`.
pub const MIN_BIAS: i32 = i32::MIN >> SHIFT_BITS;

/// The largest bias in accumulator units a `bias_shift` word holds: `2^23 - 1`.
pub const MAX_BIAS: i32 = i32::MAX >> SHIFT_BITS;

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
#[cfg(not(all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    // gemmlowp adds `2^30` to a product `p >= 0` and `1 - 2^30` to a negative one, then
    // divides truncating toward zero; for `p < 0` that is `ceil((p + 1 - 2^30) / 2^31)`,
    // which is `floor((p + 2^30) / 2^31)`, as for `p >= 0`. So one flooring shift serves
    // both signs: on a 32-bit core a multiply-accumulate into the nudge and two shifts, no
    // sign test. For `b > 0`, `-2^62 < a * b < 2^62`, so the quotient fits int32.
    ((i64::from(a) * i64::from(b) + (1 << 30)) >> 31) as i32
}

// ARM targets without 32-bit atomics are ARMv6-M (thumbv6m: Cortex-M0, M0+) and ARMv4T and
// ARMv5TE, whose Thumb instructions have no 32x32->64 multiply either: there the i64 product
// is a call to the 64x64 `__aeabi_lmul`, 37 instructions with six multiplies. Stable Rust
// exposes no ARM architecture version to `cfg`; this flag tells ARMv6-M from ARMv7-M and
// ARMv8-M. (ARMv8-M Baseline, Cortex-M23, lacks the multiply too but has the atomics.)
#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
use rounding_doubling_high_mul_in_halves as rounding_doubling_high_mul;

/// The i64 `rounding_doubling_high_mul`'s result for every pair of operands, without a 64-bit
/// multiply: the product of 16-bit halves, carried column by column (Hacker's Delight's
/// `mulhs`) in 32-bit integers that cannot overflow for any operands, with the nudge `2^30`
/// added as `2^14` in the column of weight `2^16`: four 32-bit multiplies and a dozen shifts,
/// masks and adds.
// Not inlined: inlined into the q8 row loop, its registers cost the Cortex-M0's dot product
// loop one more spill per four weights, which is more than the call costs.
#[cfg(any(test, all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(never)]
fn rounding_doubling_high_mul_in_halves(a: i32, b: i32) -> i32 {
    // `a = a1 2^16 + a0` and `b = b1 2^16 + b0`: high halves signed, low ones in 0..2^16.
    let (a1, a0) = (a >> 16, a & 0xFFFF);
    let (b1, b0) = (b >> 16, b & 0xFFFF);
    // Below 2^32, so unsigned.
    let low = (a0 as u32) * (b0 as u32);
    // `p + 2^30 = (a1 b1 + (mid >> 16) + (cross >> 16)) 2^32 + (cross & 0xFFFF) 2^16
    // + (low & 0xFFFF)`. Each sum stays within i32: `a1 b0` and `a0 b1` lie in
    // `-(2^31 - 2^15)..=2^31 - 2^16 - 2^15 + 1`, what is added to them is in `0..2^16 + 2^14`,
    // and `|a1 b1| <= 2^30`.
    let mid = a1 * b0 + (low >> 16) as i32 + (1 << 14);
    let cross = a0 * b1 + (mid & 0xFFFF);
    let high = a1 * b1 + (mid >> 16) + (cross >> 16);
    // `floor((p + 2^30) / 2^31)`: twice the high word, plus bit 31 of the low word, which is
    // bit 15 of `cross`. Doubling wraps as the i64 version's truncation does.
    (high << 1) | ((cross >> 15) & 1)
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

/// A Q16 logit as an f32 (what `verify` and `Forward::logits` give): `q * 2^-16`, exact
/// for every logit the loader admits (`|q| <=` [`MAX_LOGIT`] `= 2^24`, which f32 holds exactly).
pub fn logit_to_f32(q: i32) -> f32 {
    const UNIT: f32 = 1.0 / (1u32 << LOGIT_FRAC_BITS) as f32;
    q as f32 * UNIT
}

/// TensorFlow Lite's `QuantizeMultiplier` for a multiplier whose low 16 bits are zero: the
/// positive real `real` as `multiplier * 2^(shift - 15)` with `multiplier` in `[2^14, 2^15)`,
/// what a writer stores (I16) for a row whose real multiplier ([`requantize`]'s `acc` to
/// output code) is `real` (`model/FORMAT.md`, "What the numbers mean"); [`widen_multiplier`]
/// gives the 32-bit multiplier [`requantize`] takes. `real = q * 2^shift` with `q` in
/// `[0.5, 1)` (`frexp`), `multiplier = round(q * 2^15)` to nearest, ties away from zero, and
/// a `multiplier` rounded up to `2^15` becomes `2^14` with `shift + 1`: rounded once from
/// `real`, never from the 32-bit multiplier (which would round twice).
///
/// `None` when `real` is not finite and positive, or needs a shift outside
/// [`MIN_SHIFT`]`..=`[`MAX_SHIFT`] (TensorFlow Lite would flush a tiny one to zero and a file
/// cannot store a multiplier of 0): the writer refuses such a row rather than store another
/// number.
pub fn quantize_multiplier(real: f64) -> Option<(i16, i8)> {
    if !(real.is_finite() && real > 0.0) {
        return None;
    }
    // `q = 1` in units of the stored multiplier: 2^15.
    let one = 1i32 << (31 - MULTIPLIER_LOW_BITS);
    let (q, mut shift) = libm::frexp(real);
    let mut multiplier = libm::round(q * f64::from(one)) as i32;
    if multiplier == one {
        multiplier /= 2;
        shift += 1;
    }
    let shift = i8::try_from(shift)
        .ok()
        .filter(|s| (MIN_SHIFT..=MAX_SHIFT).contains(s))?;
    Some((i16::try_from(multiplier).ok()?, shift))
}

/// The 32-bit multiplier [`requantize`] takes for a row whose file stores `stored` (I16):
/// `stored * 2^16`, TensorFlow Lite's multiplier with its low [`MULTIPLIER_LOW_BITS`] bits
/// zero. Positive exactly when `stored` is.
#[inline(always)]
pub const fn widen_multiplier(stored: i16) -> i32 {
    (stored as i32) << MULTIPLIER_LOW_BITS
}

/// A row's `bias_shift` word (I32): `bias * 2^8 + (shift mod 2^8)`, the bias in the high 24
/// bits and the shift's two's complement byte in the low [`SHIFT_BITS`]. `None` when `bias`
/// is outside [`MIN_BIAS`]`..=`[`MAX_BIAS`]; any `shift` is packed as it is (the loader
/// checks its range). [`split_bias_shift`] gives both back.
pub const fn bias_shift(bias: i32, shift: i8) -> Option<i32> {
    if bias < MIN_BIAS || bias > MAX_BIAS {
        return None;
    }
    Some((bias << SHIFT_BITS) | (shift as u8 as i32))
}

/// The bias (the arithmetic shift `word >> 8`, in [`MIN_BIAS`]`..=`[`MAX_BIAS`]) and the
/// shift (the low byte, two's complement) of a row's `bias_shift` word: the inverse of
/// [`bias_shift`], for every `word`.
#[inline(always)]
pub const fn split_bias_shift(word: i32) -> (i32, i8) {
    (word >> SHIFT_BITS, word as i8)
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

#[cfg(test)]
mod tests {
    use super::{rounding_doubling_high_mul, rounding_doubling_high_mul_in_halves};
    use crate::Rng;

    /// The product of 16-bit halves that ARMv6-M runs gives the host's i64 product's result for
    /// every pair of operands, `requantize`'s domain (`b > 0`) and beyond: on operands whose
    /// halves are the edges of their ranges (where the carries between columns happen), and
    /// on random ones. The firmware tests compare a Cortex-M0's names with the host's.
    #[test]
    fn the_product_of_halves_is_the_i64_product() {
        let halves = [
            0u32, 1, 2, 0x3FFF, 0x4000, 0x7FFE, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF,
        ];
        let edges = || {
            halves
                .iter()
                .flat_map(|&high| halves.map(|low| ((high << 16) | low) as i32))
        };
        let mut rng = Rng::new(16);
        let random = (0..4_000_000).map(|_| (rng.next_u32() as i32, rng.next_u32() as i32));
        for (a, b) in edges()
            .flat_map(|a| edges().map(move |b| (a, b)))
            .chain(random)
        {
            assert_eq!(
                rounding_doubling_high_mul_in_halves(a, b),
                rounding_doubling_high_mul(a, b),
                "{a} {b}"
            );
        }
    }
}
