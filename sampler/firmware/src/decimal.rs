//! Exact parsing of short decimals into f32 without core's float parser, and without float
//! arithmetic: a q8 firmware then links no soft-float at all.

use namegen_model::q8::divide_wide;

/// A decimal like `0.8` or `1` as the nearest f32, the value `str::parse::<f32>` gives, without
/// core's float parser (14 KB of code and tables) and in integers alone ([`nearest_f32`]).
/// Anything else is refused: a sign, an exponent, more than 7 digits after the point, or digits
/// that read as one integer reach 2^24 (`0.80000000` and `16777216` are refused, `0.8` and
/// `16777215` are not).
pub fn parse_decimal(text: &str) -> Option<f32> {
    const POWERS: [u32; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    let (whole, fraction) = split_once(text, b'.').unwrap_or((text, ""));
    let scale = *POWERS.get(fraction.len())?;
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut digits = 0u32;
    for byte in whole.bytes().chain(fraction.bytes()) {
        let digit = char::from(byte).to_digit(10)?;
        digits = digits.checked_mul(10)?.checked_add(digit)?;
    }
    (digits < 1 << 24).then(|| nearest_f32(digits, scale))
}

/// The f32 nearest to `digits / scale` (ties to even, as IEEE division rounds), for `digits`
/// below 2^24 and `scale` in `1..=10^7`, from its bits: the quotient scaled into 24 significant
/// bits by a long division, rounded by its remainder. Every such value is 0 or a normal f32.
fn nearest_f32(digits: u32, scale: u32) -> f32 {
    if digits == 0 {
        return f32::from_bits(0);
    }
    // `digits << shift` over `scale` is in [2^22, 2^24) for this shift, below 2^48 itself;
    // one more makes it [2^23, 2^24).
    let mut shift = 23 + (32 - scale.leading_zeros()) - (32 - digits.leading_zeros());
    if u64::from(digits) << shift < u64::from(scale) << 23 {
        shift += 1;
    }
    let (significand, remainder) = divide_wide(u64::from(digits) << shift, scale);
    // Below 2^24 by the choice of shift.
    let mut significand = significand as u32;
    let twice = 2 * remainder;
    if twice > scale || (twice == scale && significand & 1 == 1) {
        significand += 1;
    }
    // The value is significand * 2^-shift: biased exponent 150 - shift for a significand in
    // [2^23, 2^24), whose leading bit adds the 1 (and a significand rounded up to 2^24 carries
    // into the exponent by itself).
    f32::from_bits(((149 - shift) << 23) + significand)
}

/// `text` around the first `byte`, an ASCII character: `str::split_once` without core's general
/// pattern searcher, which costs the firmware ~400 bytes of flash.
pub fn split_once(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}
