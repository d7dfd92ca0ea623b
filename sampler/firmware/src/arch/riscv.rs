//! What the firmware needs from a RISC-V core in machine mode: riscv-rt's entry and trap
//! handling, semihosting through the `semihosting` crate (the `slli`/`ebreak`/`srai` sequence),
//! the `minstret` counter as the clock, and painting the stack for the high-water mark, which
//! riscv-rt does not do.
//!
//! `src/arch/cortex_m.rs` offers the same items for Cortex-M; `firmware.rs` uses nothing else
//! that differs between the two.

pub use riscv_rt::entry;
use semihosting::io::Write as _;

/// The host's standard output, over semihosting.
pub type Stdout = semihosting::io::Stdout;

/// Opens the host's standard output (`:tt`); `None` if the host refuses.
pub fn stdout() -> Option<Stdout> {
    semihosting::io::stdout().ok()
}

/// Writes `bytes` to the host; nowhere to report a failing host stream, so errors are dropped
/// (a test sees the output missing).
pub fn write(out: &mut Stdout, bytes: &[u8]) {
    let _ = out.write_all(bytes);
}

/// Reads the semihosting command line into `buffer` (NUL-terminated by the host, so at most
/// `buffer.len() - 1` bytes); returns its length, or `None` if the host refused (too long).
pub fn command_line(buffer: &mut [u8]) -> Option<usize> {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and every byte of `buffer` is already
    // initialised, so viewing it as possibly uninitialised bytes loses nothing; the call only
    // writes initialised bytes into it.
    let uninit = unsafe {
        core::slice::from_raw_parts_mut(
            buffer.as_mut_ptr().cast::<core::mem::MaybeUninit<u8>>(),
            buffer.len(),
        )
    };
    semihosting::sys::arm_compat::sys_get_cmdline_uninit(uninit)
        .ok()
        .map(|line| line.len())
}

/// Ends the QEMU session with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    semihosting::process::exit(if ok { 0 } else { 1 })
}

/// The `minstret` counter (instructions retired), low 32 bits, counting up.
///
/// QEMU 7.2 reads it as its virtual clock in nanoseconds under `-icount` (one instruction per
/// nanosecond with `shift=0`) and as the host's cycle counter otherwise, so, as with SysTick on
/// Cortex-M, the ticks are instructions only under `-icount shift=0` and the firmware's
/// calibration measures the ratio.
pub struct Clock;

impl Clock {
    /// Nothing to start: the counter runs from reset.
    pub fn start() -> Self {
        Self
    }

    /// The current count, for [`Clock::since`].
    pub fn now(&self) -> u32 {
        let count: u32;
        // SAFETY: reading `minstret` (CSR 0xb02) in machine mode has no side effect.
        unsafe {
            core::arch::asm!("csrr {0}, minstret", out(reg) count, options(nomem, nostack));
        }
        count
    }

    /// Ticks since `before`; right while less than 2^32 ticks have passed, which one name is
    /// far from.
    pub fn since(&self, before: u32) -> u32 {
        self.now().wrapping_sub(before)
    }
}

/// Runs exactly `2 * loops` instructions (`addi` + `bnez` per iteration; `loops` > 0).
pub fn count_down(loops: u32) {
    // SAFETY: a register-only countdown loop.
    unsafe {
        core::arch::asm!(
            "2:",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            n = inout(reg) loops => _,
            options(nomem, nostack),
        );
    }
}

/// What [`paint_stack`] fills the unused stack with (cortex-m-rt's value, for the same reading).
pub const STACK_PAINT: u32 = 0xcccc_cccc;

unsafe extern "C" {
    // From riscv-rt's link.x: the stack region runs from `__estack` (after .bss, .uninit and the
    // empty heap) up to `_stack_start`, where the stack pointer starts.
    static __estack: u32;
    static _stack_start: u32;
}

/// Fills the stack below the current stack pointer with [`STACK_PAINT`]; called first thing in
/// `main`, so everything the firmware uses later scrubs paint off.
#[inline(always)]
pub fn paint_stack() {
    let bottom = (&raw const __estack) as usize;
    // SAFETY: everything from the stack's bottom up to the stack pointer is unused stack: no
    // interrupt is enabled and RISC-V has no red zone, so nothing lives below `sp`. The loop
    // uses registers only, no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "bgeu {p}, sp, 3f",
            "sw {paint}, 0({p})",
            "addi {p}, {p}, 4",
            "j 2b",
            "3:",
            p = inout(reg) bottom => _,
            paint = in(reg) STACK_PAINT,
            options(nostack),
        );
    }
}

/// The stack's lowest and one-past-highest addresses, all of it painted before use.
pub fn stack_bounds() -> (usize, usize) {
    (
        (&raw const __estack) as usize,
        (&raw const _stack_start) as usize,
    )
}

/// Every exception (an illegal instruction, a misaligned or bad access) ends the QEMU run with a
/// failure instead of hanging the test; riscv-rt's default would spin forever.
#[unsafe(export_name = "ExceptionHandler")]
extern "C" fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    super::fail("error: trap\n")
}
