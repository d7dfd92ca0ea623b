//! The q8 dot product on Cortex-M cores with the DSP extension (Cortex-M4 and M7:
//! `thumbv7em` targets), as CMSIS-NN computes it: SMLAD multiplies two pairs of 16-bit
//! values and adds both products to the accumulator in one instruction, SXTB16 sign-extends
//! bytes 0 and 2 (or, rotated, 1 and 3) of a word of four int8 weights into such a pair.
//!
//! A layer's input codes are stored already widened and paired (see [`Code`]), once per
//! layer, so that every row reads them with `ldm`, four words (eight codes) an instruction.
//! A row is one `asm!` block: sixteen weights cost four weight loads, two input loads, eight
//! SXTB16, eight SMLAD and the loop's two instructions, 1.5 instructions per multiply-add.
//! SMLAD's sum wraps modulo 2^32 like the portable kernel's, so both give the same integer for
//! every input.
//!
//! `core::arch::arm`'s SMLAD and SXTB16 intrinsics are unstable, hence `asm!`.

use core::arch::asm;

/// A code of a layer's input, sign-extended to 16 bits and placed so that two neighbours
/// make the pairs SXTB16 makes of a word of four weights: of each group of four inputs
/// `4g..4g + 4`, elements `4g..4g + 4` hold inputs `4g`, `4g + 2`, `4g + 1`, `4g + 3`. [`dot`]
/// loads them a word (two codes) at a time, so the buffer must be word-aligned.
pub(crate) type Code = i16;

/// Puts `code`, input `index` of a layer, into `x` (see [`Code`]). Panics past the end, like
/// slice indexing.
#[inline(always)]
pub(crate) fn store(x: &mut [Code], index: usize, code: i8) {
    x[place(index, x.len())] = i16::from(code);
}

/// `bias + sum_j weights[j] * x_j` over the row's int8 `weights` (as bytes) and the first
/// `weights.len()` inputs in `x` (see [`Code`]), wrapping like the portable kernel. Panics if
/// `x` is shorter than `weights` or not word-aligned (`ldm` faults on an unaligned address).
#[inline(always)]
pub(crate) fn dot(weights: &[u8], x: &[Code], bias: i32) -> i32 {
    let whole = weights.len() & !3;
    let (groups, tail) = weights.split_at(whole);
    // The assembly reads exactly these codes: one bounds check for the row.
    let words = &x[..whole];
    assert!(
        words.as_ptr().cast::<u32>().is_aligned(),
        "q8 codes not word-aligned"
    );
    let mut acc = bias;
    // SAFETY: the block reads `whole` bytes from `groups` (word loads, which ARMv7E-M allows
    // unaligned: the model sits at any alignment) and `whole / 2` words from `words` (`ldm`,
    // aligned, as asserted), within both slices: the loop runs `whole / 16` times, then one
    // step for bit 3 and one for bit 2 of `whole`, each step reading 4, 2 or 1 weight words
    // and twice as many words of two codes. It writes only the registers declared below, uses
    // no stack, and SMLAD's sticky Q flag is read by nothing.
    unsafe {
        asm!(
            // r9 counts the weights left minus 16, so its bits 3 and 2 stay those of the
            // remainder after the loop.
            "subs r9, r9, #16",
            "blo 3f",
            "2:",
            "ldm r1!, {{r2, r3, r4, r5}}",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r2, r8",
            "smlad r8, r10, r3, r8",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r4, r8",
            "smlad r8, r10, r5, r8",
            "ldm r1!, {{r2, r3, r4, r5}}",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r2, r8",
            "smlad r8, r10, r3, r8",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r4, r8",
            "smlad r8, r10, r5, r8",
            "subs r9, r9, #16",
            "bhs 2b",
            "3:",
            "tst r9, #8",
            "beq 4f",
            "ldm r1!, {{r2, r3, r4, r5}}",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r2, r8",
            "smlad r8, r10, r3, r8",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r4, r8",
            "smlad r8, r10, r5, r8",
            "4:",
            "tst r9, #4",
            "beq 5f",
            "ldm r1!, {{r2, r3}}",
            "ldr r10, [r0], #4",
            "sxtb16 r11, r10",
            "sxtb16 r10, r10, ror #8",
            "smlad r8, r11, r2, r8",
            "smlad r8, r10, r3, r8",
            "5:",
            inout("r0") groups.as_ptr() => _,
            inout("r1") words.as_ptr() => _,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            inout("r8") acc,
            inout("r9") whole => _,
            out("r10") _,
            out("r11") _,
            options(pure, readonly, nostack),
        );
    }
    for (index, &w) in (whole..).zip(tail) {
        acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x[place(index, x.len())]));
    }
    acc
}

/// Where input `index` of a buffer of `len` codes is kept (see [`Code`]): inputs 1 and 2 of
/// each group swap places, except in a last group the buffer cuts after input 1, which has
/// no partner; `store` and `dot`'s tail both ask here, so they agree for any width.
#[inline(always)]
fn place(index: usize, len: usize) -> usize {
    match index % 4 {
        1 if index + 1 < len => index + 1,
        2 => index - 1,
        _ => index,
    }
}
