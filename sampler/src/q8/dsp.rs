//! The q8 layers' dot products on Cortex-M cores with the DSP extension (Cortex-M4 and M7:
//! `thumbv7em` targets), as CMSIS-NN computes them: SMLAD multiplies two pairs of 16-bit
//! values and adds both products to the accumulator in one instruction, SXTB16 sign-extends
//! bytes 0 and 2 (or, rotated, 1 and 3) of a word of four int8 weights into such a pair.
//!
//! A layer's input codes are stored already widened and paired (see [`Code`]), once per
//! layer, so that they load with `ldm`, four words (eight codes) an instruction. Two rows are
//! one `asm!` block, which loads each code word once for both: sixteen weights of each row
//! cost eight weight loads, two code loads, sixteen SXTB16 and sixteen SMLAD, plus the loop's
//! two instructions per 32 weights: 1.34 instructions per multiply-add. `q8.rs`'s `groups`
//! hands it the rows two at a time. SMLAD's sum wraps modulo 2^32 like the portable kernel's,
//! so both give the same integer for every input.
//!
//! `core::arch::arm`'s SMLAD and SXTB16 intrinsics are unstable, hence `asm!`.

use core::arch::asm;

/// A code of a layer's input, sign-extended to 16 bits and placed so that two neighbours
/// make the pairs SXTB16 makes of a word of four weights: of each group of four inputs
/// `4g..4g + 4`, elements `4g..4g + 4` hold inputs `4g`, `4g + 2`, `4g + 1`, `4g + 3`. [`dots`]
/// loads them a word (two codes) at a time, so the buffer must be word-aligned.
pub(crate) type Code = i16;

/// Puts `code`, input `index` of a layer, into `x` (see [`Code`]). Panics past the end, like
/// slice indexing.
#[inline(always)]
pub(crate) fn store(x: &mut [Code], index: usize, code: i8) {
    // `place` with one comparison where it has two: the swapped place's bounds check is the
    // test whether the buffer cuts the group, the rare case that takes a second one.
    match x.get_mut(swapped(index)) {
        Some(slot) => *slot = i16::from(code),
        None => x[index] = i16::from(code),
    }
}

/// Four products of one row: the next weight word of the row at `$w` (post-incremented)
/// against the two code words `$lo` and `$hi` (see [`Code`]), into the accumulator `$acc`.
/// Clobbers r10 and r11.
#[rustfmt::skip]
macro_rules! four {
    ($w:literal, $lo:literal, $hi:literal, $acc:literal) => {
        concat!(
            "ldr r10, [", $w, "], #4\n",
            "sxtb16 r11, r10\n",
            "sxtb16 r10, r10, ror #8\n",
            "smlad ", $acc, ", r11, ", $lo, ", ", $acc, "\n",
            "smlad ", $acc, ", r10, ", $hi, ", ", $acc, "\n",
        )
    };
}

/// Four products of each of the two rows (r0 into r8, r12 into lr) on the code words `$lo`
/// and `$hi`. Clobbers r10 and r11.
macro_rules! both {
    ($lo:literal, $hi:literal) => {
        concat!(four!("r0", $lo, $hi, "r8"), four!("r12", $lo, $hi, "lr"))
    };
}

/// Eight products of each of the two rows on the next eight codes (r1, post-incremented).
/// Clobbers r2 to r5, r10 and r11.
macro_rules! eight {
    () => {
        concat!(
            "ldm r1!, {{r2, r3, r4, r5}}\n",
            both!("r2", "r3"),
            both!("r4", "r5"),
        )
    };
}

/// `bias[k] + sum_j w[k][j] * x_j` for each of the one or two rows `w[k]` of `cols` int8
/// weights (as bytes) in `block` and the first `cols` inputs in `x` (see [`Code`]), wrapping
/// like the portable kernel: each code word is loaded once for both rows. A block of one row
/// gives that row's sum twice (plus each `bias`), computed again rather than branched around.
/// Panics if `block` or `x` is shorter than `cols`, or `x` is not word-aligned (`ldm` faults
/// on an unaligned address).
#[inline(always)]
pub(crate) fn dots(block: &[u8], cols: usize, x: &[Code], bias: [i32; 2]) -> [i32; 2] {
    // The second row starts `cols` in, or where the first does if the block lacks it.
    let last = block
        .len()
        .checked_sub(cols)
        .expect("a block of at least one row");
    let rows = [&block[..cols], &block[cols.min(last)..][..cols]];
    let whole = cols & !3;
    // The assembly reads exactly these codes: one bounds check for both rows.
    let words = &x[..whole];
    assert!(
        words.as_ptr().cast::<u32>().is_aligned(),
        "q8 codes not word-aligned"
    );
    let [mut a, mut b] = bias;
    // SAFETY: the block reads the first `whole` bytes of each row (word loads, which ARMv7E-M
    // allows unaligned: the model sits at any alignment) and the `whole / 2` words of `words`
    // (`ldm`, aligned, as asserted), all within the slices: the loop runs `whole / 32` times,
    // then one step for each of bits 4, 3 and 2 of `whole`, each step reading 8, 4, 2 or 1
    // weight words of each row and twice as many words of two codes. It writes only the
    // registers declared below, uses no stack, and SMLAD's sticky Q flag is read by nothing.
    unsafe {
        asm!(
            // r9 counts the weights left minus 32, so its bits 4, 3 and 2 stay those of the
            // remainder after the loop.
            "subs r9, r9, #32",
            "blo 3f",
            "2:",
            eight!(),
            eight!(),
            eight!(),
            eight!(),
            "subs r9, r9, #32",
            "bhs 2b",
            "3:",
            "tst r9, #16",
            "beq 6f",
            eight!(),
            eight!(),
            "6:",
            "tst r9, #8",
            "beq 4f",
            eight!(),
            "4:",
            "tst r9, #4",
            "beq 5f",
            "ldm r1!, {{r2, r3}}",
            both!("r2", "r3"),
            "5:",
            inout("r0") rows[0].as_ptr() => _,
            inout("r1") words.as_ptr() => _,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            inout("r8") a,
            inout("r9") whole => _,
            out("r10") _,
            out("r11") _,
            inout("r12") rows[1].as_ptr() => _,
            inout("lr") b,
            options(pure, readonly, nostack),
        );
    }
    for index in whole..cols {
        let code = i32::from(x[place(index, x.len())]);
        a = a.wrapping_add(i32::from(rows[0][index] as i8) * code);
        b = b.wrapping_add(i32::from(rows[1][index] as i8) * code);
    }
    [a, b]
}

/// Where input `index` of a buffer of `len` codes is kept (see [`Code`]): inputs 1 and 2 of
/// each group swap places, except in a last group the buffer cuts after input 1, which has
/// no partner; `store` and `dots`' tail both ask here, so they agree for any width.
#[inline(always)]
fn place(index: usize, len: usize) -> usize {
    let swapped = swapped(index);
    if swapped < len { swapped } else { index }
}

/// Input `index`'s place in a whole group of four (see [`Code`]): bits 0 and 1 trade places
/// where they differ (1 <-> 2 in each group), without a branch: this runs for every output
/// of every row.
#[inline(always)]
fn swapped(index: usize) -> usize {
    index ^ (((index ^ (index >> 1)) & 1) * 3)
}
