//! The activation function of the forward pass: `tanh` as a rational function of plain IEEE
//! single-precision arithmetic.
//!
//! Why not `libm::tanhf`: it picks one of several formulas by the argument's range, and with
//! activations spread over every range those branches are unpredictable; its 500 calls per
//! character (one per hidden unit) cost more than all the matrix arithmetic together (about 8 ns each on the
//! benchmark machine, and no way to vectorise them). This function is one fixed sequence of
//! comparisons, multiplications, additions and one division, so:
//! - it gives the same bits on every target (IEEE `+ - * /` are correctly rounded everywhere,
//!   including soft-float Cortex-M and WASM, and Rust never fuses `a * b + c`);
//! - a loop over a layer's outputs vectorises.
//!
//! The approximation is Eigen's single-precision one (`generic_fast_tanh_float`: a degree-13
//! odd numerator over a degree-6 even denominator on `[-7.9053, 7.9053]`, and `x` itself
//! where `|x| < 0.0004`). Its error against the exact `tanh` is below 4e-7 everywhere
//! (3.83e-7 at worst, about 6 units in the last place near 1; see the tests), below the
//! rounding of the f32 dot products that feed it, so the forward pass still matches the f64
//! reference to 1e-5.

/// Beyond this the approximation is within rounding of +-1; clamping keeps it there.
pub(crate) const CLAMP: f32 = 7.905_311;
/// Below this `tanh(x)` rounds to `x`, and the rational form would lose relative accuracy.
pub(crate) const TINY: f32 = 0.0004;
/// Numerator coefficients of `x^13, x^11, ..., x^1` (Eigen's, written as the shortest decimals
/// of the same f32 values).
pub(crate) const ALPHA: [f32; 7] = [
    -2.760_768_4e-16,
    2.000_188e-13,
    -8.604_672e-11,
    5.122_297_3e-8,
    1.485_722_35e-5,
    6.372_619_5e-4,
    4.893_524_6e-3,
];
/// Denominator coefficients of `x^6, x^4, x^2, x^0`.
pub(crate) const BETA: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_7e-3, 4.893_525e-3];

/// `tanh(x)` to within 4e-7, the same bits on every target; see the module documentation for
/// the exact sequence of operations (Horner's rule in `x^2`, highest power first). NaN stays
/// NaN; the infinities give +-1.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let clamped = x.clamp(-CLAMP, CLAMP);
    let x2 = clamped * clamped;
    let mut p = ALPHA[0];
    for alpha in &ALPHA[1..] {
        p = p * x2 + alpha;
    }
    p *= clamped;
    let mut q = BETA[0];
    for beta in &BETA[1..] {
        q = q * x2 + beta;
    }
    let ratio = p / q;
    if x.abs() < TINY { x } else { ratio }
}
