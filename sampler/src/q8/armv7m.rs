//! The q8 dot products on ARMv7-M cores without the DSP extension (the Cortex-M3: `thumbv7m`
//! targets; ARMv8-M Mainline, the Cortex-M33's `thumbv8m.main`, has the same instructions),
//! four rows at a time.
//!
//! Without SMLAD a product costs a multiply-accumulate (MLA) and the loads of its two int8
//! operands, which LDRSB sign-extends as it loads, post-incrementing its pointer. Four rows
//! share each input: per input one LDRSB of the input, then per row one LDRSB of its weight
//! and one MLA, 9 instructions for 4 products (2.4 with the loop, unrolled by four), where the
//! portable kernel loads both operands of every product (about 4.5 instructions a product).
//! Four rows take 12 of the 13 registers inline assembly may use on Thumb (r7 is the frame
//! pointer, sp and pc are not registers to allocate): four accumulators, four weight pointers,
//! the input pointer, the count, the input and the weight; a fifth row would need 14.
//!
//! MLA's sum wraps modulo 2^32 like the portable kernel's, so both give the same integer for
//! every input. The assembly runs only on the device: the firmware tests, which compare the
//! Cortex-M3's and M33's names with the host's, are its test; `q8.rs`'s unit test runs the
//! grouping of rows around it on the host.

use core::arch::asm;

/// One input of all four rows, in the named operands of [`dots`]' `asm!`, which runs it four
/// times an iteration in its loop and once an iteration in its tail: loads the next input
/// (`{xp}`, post-incremented) into `{x}`, then for each row `k` the row's next weight (`{wk}`,
/// post-incremented) into `{w}` and adds their product to the row's accumulator `{ak}`.
macro_rules! step {
    () => {
        concat!(
            "ldrsb {x}, [{xp}], #1\n",
            "ldrsb {w}, [{w0}], #1\n",
            "mla {a0}, {w}, {x}, {a0}\n",
            "ldrsb {w}, [{w1}], #1\n",
            "mla {a1}, {w}, {x}, {a1}\n",
            "ldrsb {w}, [{w2}], #1\n",
            "mla {a2}, {w}, {x}, {a2}\n",
            "ldrsb {w}, [{w3}], #1\n",
            "mla {a3}, {w}, {x}, {a3}\n",
        )
    };
}

/// `bias[k] + sum_j w[k][j] * x[j]` for each of the one to four rows `w[k]` of `cols` int8
/// weights (as bytes) in `block` and the first `cols` codes of `x`, wrapping like the
/// portable kernel; the sums of the rows the block lacks are those of its last row (plus
/// their own `bias`), computed again rather than branched around. Panics if `block` or `x` is
/// shorter than `cols`.
#[inline(always)]
pub(crate) fn dots(block: &[u8], cols: usize, x: &[i8], bias: [i32; 4]) -> [i32; 4] {
    let x = &x[..cols];
    // Row `k` starts at `k * cols`, or where the last row does if the block lacks it.
    let last = block
        .len()
        .checked_sub(cols)
        .expect("a block of at least one row");
    let row = |k: usize| block.as_ptr().wrapping_add((k * cols).min(last));
    let [mut a0, mut a1, mut a2, mut a3] = bias;
    // SAFETY: the assembly reads `cols` bytes from each of the five pointers: `x`, cut to
    // `cols` above (a shorter one has panicked), and the rows, each starting at most `last`
    // into `block`, so `cols` bytes inside it. It writes only registers, all declared as
    // outputs; the two loops take `cols` inputs between them (none for `cols == 0`), each
    // pointer advancing one byte an input. LDRSB, MLA, SUBS, ADDS and the branches are ARMv7-M
    // (and ARMv8-M Mainline) instructions, which the `armv7m` feature promises the core has.
    unsafe {
        asm!(
            // Four inputs an iteration while four remain, then one at a time.
            "subs {n}, {n}, #4",
            "blo 3f",
            "2:",
            step!(),
            step!(),
            step!(),
            step!(),
            "subs {n}, {n}, #4",
            "bhs 2b",
            "3:",
            "adds {n}, {n}, #4",
            "beq 5f",
            "4:",
            step!(),
            "subs {n}, {n}, #1",
            "bne 4b",
            "5:",
            x = out(reg) _,
            w = out(reg) _,
            xp = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) row(0) => _,
            w1 = inout(reg) row(1) => _,
            w2 = inout(reg) row(2) => _,
            w3 = inout(reg) row(3) => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            n = inout(reg) cols => _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}
