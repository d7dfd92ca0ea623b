//! The arithmetic kernels against exact values.

use namegen_sampler::{f16_to_f32, tanh};

#[test]
fn tanh_is_within_4e_7_of_the_exact_value_and_never_beyond_one() {
    // Every 61st bit pattern of both signs: 70 million inputs, every exponent.
    for bits in (0..=u32::MAX).step_by(61) {
        let x = f32::from_bits(bits);
        let got = tanh(x);
        if x.is_nan() {
            assert!(got.is_nan());
            continue;
        }
        let exact = libm::tanh(f64::from(x));
        assert!(
            (f64::from(got) - exact).abs() <= 4e-7,
            "tanh({x:e}) = {got:e}, exactly {exact:e}"
        );
        assert!(got.abs() <= 1.0, "tanh({x:e}) = {got:e}");
        assert_eq!(tanh(-x).to_bits(), (-got).to_bits(), "odd at {x:e}");
    }
    assert_eq!(tanh(f32::INFINITY), 1.0);
    assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
}

#[test]
fn f16_decoding_is_exact_for_every_bit_pattern() {
    for bits in 0..=u16::MAX {
        let (got, want) = (f16_to_f32(bits), half::f16::from_bits(bits).to_f32());
        assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
    }
}
