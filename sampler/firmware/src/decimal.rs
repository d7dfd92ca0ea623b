//! Exact parsing of short decimals into f32 without core's float parser.

/// A decimal like `0.8` or `1` as the nearest f32, the value `str::parse::<f32>` gives, without
/// core's float parser (14 KB of code and tables). Both the digits as an integer (below 2^24)
/// and the power of ten (at most 10^7) are exact in f32, and IEEE division rounds correctly, so
/// one division gives the nearest f32 to the decimal. Anything else is refused: a sign, an
/// exponent, more than 7 digits after the point, or digits that read as one integer reach 2^24
/// (`0.80000000` and `16777216` are refused, `0.8` and `16777215` are not).
pub fn parse_decimal(text: &str) -> Option<f32> {
    const POWERS: [f32; 8] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
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
    (digits < 1 << 24).then(|| digits as f32 / scale)
}

/// `text` around the first `byte`, an ASCII character: `str::split_once` without core's general
/// pattern searcher, which costs the firmware ~400 bytes of flash.
pub fn split_once(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}
