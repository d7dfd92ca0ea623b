//! The q8 writer's helpers against the numpy reference
//! (`sampler/tests/data/make_q8_fixture.py`): TensorFlow Lite's `QuantizeMultiplier` at 16
//! bits and the `tanh` table, with the values the script's functions give; the packing of a
//! row's bias and shift; the requantisation against its formula.

use namegen_model::q8::{
    MAX_BIAS, MAX_SHIFT, MIN_BIAS, MIN_SHIFT, bias_shift, quantize_multiplier, requantize,
    split_bias_shift, tanh_table, widen_multiplier,
};

#[test]
fn quantize_multiplier_gives_the_numpy_references_values() {
    // `quantize_multiplier(real)` of make_q8_fixture.py, printed by Python.
    let cases: [(f64, i16, i8); 14] = [
        (1.0, 16384, 1),
        (0.5, 16384, 0),
        (0.75, 24576, 0),
        (3.25 / 127.0, 26834, -5),
        (0.0123456789, 25891, -6),
        (1e-9, 17592, -29),
        (4.656612873077393e-10, 16384, -30),
        (3.4924596548080444e-10, 24576, -31),
        (536870912.0, 16384, 30),
        // q * 2^15 rounds up to 2^15: halved, shift + 1.
        (0.9999999999990905, 16384, 1),
        (0.1, 26214, -3),
        (123.456, 31605, 7),
        (0.025590551181102362 * 1.5, 20125, -4),
        // q * 2^15 = 20000.5 - 2^-17 rounds down, once; TensorFlow Lite's 32-bit multiplier
        // would round it to 20000.5 * 2^16, and that again to 20001.
        ((20000.5 - 2f64.powi(-17)) / 32768.0, 20000, 0),
    ];
    for (real, multiplier, shift) in cases {
        assert_eq!(
            quantize_multiplier(real),
            Some((multiplier, shift)),
            "{real}"
        );
        // What it stands for: multiplier * 2^(shift - 15) is real to within 2^-15 relative,
        // and so is requantize's 32-bit multiplier times 2^(shift - 31).
        let back = f64::from(multiplier) * 2f64.powi(i32::from(shift) - 15);
        assert!((back / real - 1.0).abs() <= 2f64.powi(-15), "{real}");
        let wide = f64::from(widen_multiplier(multiplier)) * 2f64.powi(i32::from(shift) - 31);
        assert_eq!(wide, back, "{real}");
    }
    // Shifts the file cannot store (the script's assertion fails on these; the last rounds
    // up to 2^30 * 2^(31 - 31), a shift of 31), and non-numbers.
    for real in [
        2146409906.176,
        2147483647.5,
        2f64.powi(-33),
        (1.0 - 2f64.powi(-17)) * 2f64.powi(30),
        0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
    ] {
        assert_eq!(quantize_multiplier(real), None, "{real}");
    }
    // A multiplier of 0.75 * 2^0 halves and rounds: 3 * 0.375 = 1.125 -> 1, -1.125 -> -1.
    let (m, s) = quantize_multiplier(0.375).unwrap();
    let m = widen_multiplier(m);
    assert_eq!((requantize(3, m, s), requantize(-3, m, s)), (1, -1));
}

#[test]
fn widened_multipliers_are_the_stored_ones_times_2_16() {
    assert_eq!(widen_multiplier(1), 65536);
    assert_eq!(widen_multiplier(16384), 1 << 30);
    assert_eq!(widen_multiplier(i16::MAX), 0x7FFF_0000);
    // Not positive stays not positive: the loader refuses these.
    assert_eq!(widen_multiplier(0), 0);
    assert_eq!(widen_multiplier(-1), -65536);
    assert_eq!(widen_multiplier(i16::MIN), i32::MIN);
}

#[test]
fn a_bias_shift_word_holds_both_and_gives_them_back() {
    // The format's layout, written out: bias * 256 + (shift mod 256).
    assert_eq!(bias_shift(0, 0), Some(0));
    assert_eq!(bias_shift(1, -1), Some(0x1FF));
    assert_eq!(bias_shift(-1, -1), Some(-1));
    assert_eq!(bias_shift(-1, 0), Some(-256));
    assert_eq!(bias_shift(177_420, -9), Some(177_420 * 256 + 247));
    assert_eq!(bias_shift(MAX_BIAS, 30), Some(0x7FFF_FF1E));
    assert_eq!(bias_shift(MIN_BIAS, -31), Some(i32::MIN + 0xE1));
    assert_eq!((MIN_BIAS, MAX_BIAS), (-(1 << 23), (1 << 23) - 1));
    // Beyond 24 bits: refused, not wrapped.
    for bias in [MAX_BIAS + 1, MIN_BIAS - 1, i32::MAX, i32::MIN] {
        assert_eq!(bias_shift(bias, 0), None, "{bias}");
    }
    let mut rng = namegen_model::Rng::new(24);
    for _ in 0..100_000 {
        let bias = (rng.next_u32() as i32) >> 8;
        let shift = rng.next_u32() as i8;
        let word = bias_shift(bias, shift).unwrap();
        assert_eq!(split_bias_shift(word), (bias, shift), "{word:#x}");
        // And every word is some bias and shift.
        let word = rng.next_u32() as i32;
        let (bias, shift) = split_bias_shift(word);
        assert_eq!(bias_shift(bias, shift), Some(word), "{word:#x}");
    }
}

#[test]
#[cfg(debug_assertions)]
fn requantize_asserts_its_domain_in_debug_builds() {
    // What the loader refuses (a multiplier not positive, gemmlowp's saturating case among
    // them, or a shift out of range) is outside `requantize`'s domain: debug builds panic.
    let outside = [
        (0, 0),
        (-1, 0),
        (i32::MIN, 0),
        (1 << 30, MIN_SHIFT - 1),
        (1 << 30, MAX_SHIFT + 1),
        (1 << 30, i8::MIN),
        (1 << 30, i8::MAX),
    ];
    for (multiplier, shift) in outside {
        let result = std::panic::catch_unwind(|| requantize(1 << 20, multiplier, shift));
        assert!(result.is_err(), "{multiplier} {shift}");
    }
}

#[test]
fn tanh_table_is_the_numpy_references() {
    let table = tanh_table(3.25);
    // Every 17th entry, the sum and a position-weighted sum, printed by numpy.
    let every_17th: Vec<i8> = table.iter().step_by(17).copied().collect();
    assert_eq!(
        every_17th,
        [
            -127, -126, -125, -122, -116, -102, -74, -29, 26, 72, 100, 115, 122, 125, 126, 127
        ]
    );
    let sum: i64 = table.iter().map(|&c| i64::from(c)).sum();
    let weighted: i64 = (1..).zip(table).map(|(i, c)| i * i64::from(c)).sum();
    assert_eq!((sum, weighted), (-127, 1906853));
    // Odd, and saturated from 3.114 on: code k covers k * 3.25 / 127.
    assert_eq!(table[128], 0);
    assert!((1..128).all(|k| table[128 + k] == -table[128 - k]));
    assert_eq!(table[0], -127);
    assert_eq!(table[128 + 122], 127);
    assert!(table[128 + 121] < 127);
}

#[test]
fn requantize_is_the_formats_formula_in_wide_integers() {
    // model/FORMAT.md's requantisation with every intermediate in i128, where nothing can
    // overflow: the reference for the 32-bit code, on a million accumulators, multipliers
    // and shifts of its domain (`acc * 2^max(shift, 0)` within int32).
    let reference = |acc: i32, multiplier: i32, shift: i8| -> i32 {
        let (left, right) = (shift.max(0) as u32, (-shift).max(0) as u32);
        let p = (i128::from(acc) << left) * i128::from(multiplier);
        let h = (p + if p >= 0 { 1 << 30 } else { 1 - (1 << 30) }) / (1 << 31);
        let mask = (1i128 << right) - 1;
        let up = (h & mask) > (mask >> 1) + i128::from(h < 0);
        i32::try_from((h >> right) + i128::from(up)).unwrap()
    };
    let mut rng = namegen_model::Rng::new(8);
    for _ in 0..1_000_000 {
        let shift = (rng.below(62) as i8) - 31;
        let multiplier = (rng.next_u32() >> 1).max(1) as i32;
        let limit = i32::MAX >> shift.max(0);
        let acc = (rng.next_u32() as i32) % limit;
        assert_eq!(
            requantize(acc, multiplier, shift),
            reference(acc, multiplier, shift),
            "{acc} {multiplier} {shift}"
        );
    }
    // Ties of both roundings, for either sign, which random operands almost never hit: a
    // multiplier of 2^30 halves `acc` exactly, and each right shift halves again.
    for acc in -1000..=1000 {
        for shift in -4..=2 {
            assert_eq!(
                requantize(acc, 1 << 30, shift),
                reference(acc, 1 << 30, shift),
                "{acc} {shift}"
            );
        }
    }
    // Both ends of the domain.
    for (acc, multiplier, shift) in [(i32::MAX, i32::MAX, 0), (i32::MIN + 1, i32::MAX, -31)] {
        assert_eq!(
            requantize(acc, multiplier, shift),
            reference(acc, multiplier, shift)
        );
    }
}
