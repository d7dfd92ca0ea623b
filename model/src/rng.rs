//! The one pseudo-random generator of the project: PCG32 (PCG-XSH-RR, 64-bit state, 32-bit
//! output) by M. E. O'Neill, exactly as `pcg32_random_r` / `pcg32_srandom_r` in the reference
//! C implementation.
//!
//! It is written out here rather than taken from a crate on purpose: a seed must name the
//! same split, the same initial weights and the same list of names on every target and in
//! every future version, so the algorithm and every conversion of its output into a draw are
//! part of the contract, and a dependency upgrade must never be able to change them.
//!
//! Conversions (all documented promises):
//! - [`Rng::next_f32`]: the top 24 bits of one output, times 2^-24: uniform in `[0, 1)`,
//!   exact in `f32`.
//! - [`Rng::next_f64`]: two outputs, `(a << 32 | b) >> 11`, times 2^-53: uniform in `[0, 1)`.
//! - [`Rng::below`]: Lemire's multiply-shift with rejection, unbiased.
//! - [`Rng::normal`]: Box-Muller from two [`Rng::next_f64`] draws with `libm`, the cosine
//!   branch only (one draw per normal, so the state stays a plain PCG32 state).
//!
//! [`Rng`] is also a `rand_core` generator, for code written against those traits (a HAL
//! takes any `rand_core::Rng`, `rand`'s distributions take one): `next_u32` is
//! [`Rng::next_u32`], `next_u64` two of them, the first the low half, and `fill_bytes` takes
//! them little-endian, four bytes each (as `rand_pcg::Pcg32` does). As a
//! `rand_core::SeedableRng`, a seed of 16 bytes is the little-endian `seed` and `stream` of
//! [`Rng::with_stream`], and `seed_from_u64(s)` is [`Rng::new`]`(s)`, so the same number
//! names the same stream either way.

use core::convert::Infallible;

use rand_core::{SeedableRng, TryRng, utils};

/// The stream selector used when none is given: the reference implementation's
/// `PCG32_INITIALIZER` increment.
pub const DEFAULT_STREAM: u64 = 0xda3e_39cb_94b9_5bdb;

const MULTIPLIER: u64 = 6_364_136_223_846_793_005;

/// A PCG32 generator. Its whole state is two `u64`s, so it can be saved and restored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rng {
    state: u64,
    increment: u64,
}

impl Rng {
    /// A generator seeded like `pcg32_srandom_r(seed, DEFAULT_STREAM)`.
    pub fn new(seed: u64) -> Self {
        Self::with_stream(seed, DEFAULT_STREAM)
    }

    /// A generator seeded like `pcg32_srandom_r(seed, stream)`; different streams give
    /// independent sequences for the same seed.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = Self {
            state: 0,
            increment: (stream << 1) | 1,
        };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    /// The generator's state `(state, increment)`, to save it.
    pub const fn to_parts(&self) -> (u64, u64) {
        (self.state, self.increment)
    }

    /// Restores a state saved with [`Rng::to_parts`]. The increment is forced odd, as PCG
    /// requires, so any pair of numbers gives a working generator.
    pub const fn from_parts(state: u64, increment: u64) -> Self {
        Self {
            state,
            increment: increment | 1,
        }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MULTIPLIER).wrapping_add(self.increment);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)` with 24 bits of resolution: [`unit_f32`] of the next output.
    pub fn next_f32(&mut self) -> f32 {
        unit_f32(self.next_u32())
    }

    /// Uniform in `[0, 1)` with 53 bits of resolution.
    pub fn next_f64(&mut self) -> f64 {
        let high = u64::from(self.next_u32());
        let low = u64::from(self.next_u32());
        ((high << 32 | low) >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in `0..bound`, unbiased. `bound` 0 gives 0.
    pub fn below(&mut self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        // Lemire, "Fast Random Integer Generation in an Interval" (2019).
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u64::from(self.next_u32()) * u64::from(bound);
            if (product as u32) >= threshold {
                return (product >> 32) as u32;
            }
        }
    }

    /// A standard normal draw (mean 0, variance 1).
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let radius = libm::sqrt(-2.0 * libm::log(1.0 - self.next_f64()));
        let angle = 2.0 * core::f64::consts::PI * self.next_f64();
        radius * libm::cos(angle)
    }

    /// Shuffles `items` in place with Fisher-Yates from the back: for `i` from `len - 1`
    /// down to 1, swap item `i` with item [`Rng::below`]`(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The top 24 bits of `bits` times 2^-24: uniform in `[0, 1)` and exact in `f32` when `bits`
/// is uniform. [`Rng::next_f32`] is this of one output; the sampler turns any generator's
/// 32-bit words into draws the same way.
pub fn unit_f32(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

impl TryRng for Rng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        utils::next_u64_via_u32(self)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        utils::fill_bytes_via_next_word(dst, || self.try_next_u32())
    }
}

impl SeedableRng for Rng {
    /// `seed` then `stream` of [`Rng::with_stream`], little-endian.
    type Seed = [u8; 16];

    fn from_seed(seed: [u8; 16]) -> Self {
        let [seed, stream] = utils::read_words::<u64, 2>(&seed);
        Self::with_stream(seed, stream)
    }

    fn seed_from_u64(seed: u64) -> Self {
        Self::new(seed)
    }
}
