//! The firmware's decimal parser (`sampler/firmware/src/decimal.rs`, compiled here for the
//! host) against `str::parse::<f32>`: every decimal it accepts must give the very same f32, or a
//! temperature or top-p typed on the device would draw different names than on the host.

#[path = "../../sampler/firmware/src/decimal.rs"]
mod decimal;

use decimal::parse_decimal;

fn same_as_core(text: &str) {
    let ours = parse_decimal(text).unwrap_or_else(|| panic!("{text:?} refused"));
    let core: f32 = text.parse().expect("core parses it");
    assert_eq!(ours.to_bits(), core.to_bits(), "{text:?}");
}

#[test]
fn every_decimal_with_up_to_four_places_below_100_matches_core() {
    for places in 0..=4usize {
        let scale = 10u32.pow(places as u32);
        for n in 0..100 * scale {
            let text = if places == 0 {
                n.to_string()
            } else {
                let (whole, fraction) = (n / scale, n % scale);
                format!("{whole}.{fraction:0places$}")
            };
            same_as_core(&text);
        }
    }
}

#[test]
fn seven_places_and_the_largest_digit_strings_match_core() {
    // A PCG-like walk over 7-place fractions and over integers near 2^24.
    let mut state = 0x853c_49e6_748f_ea9bu64;
    for _ in 0..200_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = (state >> 40) as u32 % 10_000_000;
        same_as_core(&format!("0.{n:07}"));
        // 1.nnnnnnn stays below 2^24 as a digit string up to 1.6777215.
        if n < 6_777_216 {
            same_as_core(&format!("1.{n:07}"));
        }
        same_as_core(&(16_777_215 - n % 1000).to_string());
    }
    for text in [
        "1.",
        ".5",
        "0",
        "000001.5",
        "16777215",
        "1.6777215",
        "0.0000001",
    ] {
        same_as_core(text);
    }
}

#[test]
fn what_it_cannot_parse_exactly_it_refuses() {
    for text in [
        "",
        ".",
        "-1",
        "+1",
        "1e3",
        "inf",
        "NaN",
        "0.80000000",
        "16777216",
        "1.2.3",
        "1,5",
        " 1",
        "0x10",
        "1_0",
    ] {
        assert_eq!(parse_decimal(text), None, "{text:?}");
    }
}
