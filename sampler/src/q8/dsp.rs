//! The q8 dot product on Cortex-M cores with the DSP extension (Cortex-M4 and M7:
//! `thumbv7em` targets), as CMSIS-NN computes it: SMLAD multiplies two pairs of 16-bit
//! values and adds both products to the accumulator in one instruction, SXTB16 sign-extends
//! bytes 0 and 2 (or, rotated, 1 and 3) of a word of four int8 weights into such a pair.
//!
//! A layer's input codes are stored already widened and paired (see [`Code`]), once per
//! layer, so that every row reads them with plain word loads: four products cost a weight
//! load, two SXTB16, two input loads and two SMLAD. SMLAD's sum wraps modulo 2^32 like the
//! portable kernel's, so both give the same integer for every input.
//!
//! `core::arch::arm`'s SMLAD and SXTB16 intrinsics are unstable, hence one-instruction
//! `asm!` blocks, which the compiler schedules and unrolls around like any operation.

use core::arch::asm;

/// A code of a layer's input, sign-extended to 16 bits and placed so that two neighbours
/// make the pairs SXTB16 makes of a word of four weights: of each group of four inputs
/// `4g..4g + 4`, elements `4g..4g + 4` hold inputs `4g`, `4g + 2`, `4g + 1`, `4g + 3`.
pub(crate) type Code = i16;

/// Puts `code`, input `index` of a layer, into `x` (see [`Code`]). Panics past the end, like
/// slice indexing.
#[inline(always)]
pub(crate) fn store(x: &mut [Code], index: usize, code: i8) {
    x[place(index)] = i16::from(code);
}

/// `bias + sum_j weights[j] * x_j` over the row's int8 `weights` (as bytes) and the first
/// `weights.len()` inputs in `x` (see [`Code`]), wrapping like the portable kernel. Panics if
/// `x` is shorter than `weights`.
#[inline(always)]
pub(crate) fn dot(weights: &[u8], x: &[Code], bias: i32) -> i32 {
    let (groups, tail) = weights.as_chunks::<4>();
    let (inputs, _) = x[..4 * groups.len()].as_chunks::<4>();
    // Two codes as SMLAD's operand: the first in the low half.
    let pair = |low: i16, high: i16| u32::from(low as u16) | (u32::from(high as u16) << 16);
    let step = |acc: i32, w: &[u8; 4], x: &[i16; 4]| {
        // Unaligned word loads are allowed on ARMv7E-M (the model sits at any alignment).
        let w = u32::from_le_bytes(*w);
        let acc = smlad(sxtb16(w), pair(x[0], x[1]), acc);
        smlad(sxtb16_ror8(w), pair(x[2], x[3]), acc)
    };
    // Two groups per iteration: half the loop's counting and branching.
    let (group_pairs, last_group) = groups.as_chunks::<2>();
    let (input_pairs, last_inputs) = inputs.as_chunks::<2>();
    let mut acc = bias;
    for (w, x) in group_pairs.iter().zip(input_pairs) {
        acc = step(step(acc, &w[0], &x[0]), &w[1], &x[1]);
    }
    for (w, x) in last_group.iter().zip(last_inputs) {
        acc = step(acc, w, x);
    }
    for (index, &w) in (4 * groups.len()..).zip(tail) {
        acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x[place(index)]));
    }
    acc
}

/// Where input `index` is kept (see [`Code`]): inputs 1 and 2 of each group swap places.
#[inline(always)]
fn place(index: usize) -> usize {
    match index % 4 {
        1 => index + 1,
        2 => index - 1,
        _ => index,
    }
}

/// Bytes 0 and 2 of `w`, each sign-extended to 16 bits: `[w0, w2]` (low half first).
#[inline(always)]
fn sxtb16(w: u32) -> u32 {
    let pair;
    // SAFETY: SXTB16 reads and writes registers only; this module is compiled only for the
    // `dsp` feature, whose cores (ARMv7E-M) have the instruction.
    unsafe {
        asm!("sxtb16 {pair}, {w}", w = in(reg) w, pair = lateout(reg) pair,
             options(pure, nomem, nostack, preserves_flags));
    }
    pair
}

/// Bytes 1 and 3 of `w`, each sign-extended to 16 bits: `[w1, w3]`.
#[inline(always)]
fn sxtb16_ror8(w: u32) -> u32 {
    let pair;
    // SAFETY: as in `sxtb16`: registers only, an ARMv7E-M instruction.
    unsafe {
        asm!("sxtb16 {pair}, {w}, ror #8", w = in(reg) w, pair = lateout(reg) pair,
             options(pure, nomem, nostack, preserves_flags));
    }
    pair
}

/// `acc + a.lo * b.lo + a.hi * b.hi` (16-bit halves, signed), modulo 2^32.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let sum;
    // SAFETY: SMLAD reads and writes registers only (and may set the sticky Q flag on
    // overflow, which nothing here reads); an ARMv7E-M instruction, as in `sxtb16`.
    unsafe {
        asm!("smlad {sum}, {a}, {b}, {acc}", a = in(reg) a, b = in(reg) b, acc = in(reg) acc,
             sum = lateout(reg) sum, options(pure, nomem, nostack));
    }
    sum
}
