//! What the firmware needs from a Cortex-M (ARMv6-M, ARMv7-M, ARMv8-M): cortex-m-rt's entry
//! and vector table, semihosting through cortex-m-semihosting (`bkpt 0xab`), the SysTick timer
//! as the clock, and cortex-m-rt's `paint-stack` for the stack high-water mark.
//!
//! `src/arch/riscv.rs` offers the same items for RISC-V; `firmware.rs` uses nothing else that
//! differs between the two.

use core::ptr;

// The memory helpers the compiler calls, small instead of fast (see the module).
#[path = "mem.rs"]
mod mem;

pub use cortex_m_rt::entry;
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{debug, hio, nr, syscall1};

/// The host's standard output, over semihosting.
pub type Stdout = hio::HostStream;

/// Opens the host's standard output (`:tt`); `None` if the host refuses.
pub fn stdout() -> Option<Stdout> {
    hio::hstdout().ok()
}

/// Writes `bytes` to the host; nowhere to report a failing host stream, so errors are dropped
/// (a test sees the output missing).
pub fn write(out: &mut Stdout, bytes: &[u8]) {
    let _ = out.write_all(bytes);
}

/// Reads the semihosting command line into `buffer` (NUL-terminated by the host, so at most
/// `buffer.len() - 1` bytes); returns its length, or `None` if the host refused (too long).
pub fn command_line(buffer: &mut [u8]) -> Option<usize> {
    // SYS_GET_CMDLINE takes {buffer, size} and writes the length back into the block.
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    // SAFETY: the block and the buffer it points to live across the call and are writable.
    let status = unsafe { syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    // SAFETY: the host wrote the length into the block; read it back past the compiler's view.
    let len = unsafe { ptr::read_volatile(&block[1]) };
    (status == 0).then_some(len.min(buffer.len().saturating_sub(1)))
}

/// Ends the QEMU session with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached under a debugger that resumes after the exit request.
    loop {
        core::hint::spin_loop();
    }
}

/// The SysTick timer as a free-running 24-bit down-counter on the processor clock.
///
/// Under QEMU's `-icount shift=0` every instruction advances virtual time by exactly 1 ns, so
/// ticks are instructions times a fixed ratio, which the firmware's calibration measures;
/// without `-icount` the ticks follow the host's clock and mean nothing.
pub struct Clock;

impl Clock {
    const CSR: *mut u32 = 0xe000_e010 as *mut u32;
    const RVR: *mut u32 = 0xe000_e014 as *mut u32;
    const CVR: *mut u32 = 0xe000_e018 as *mut u32;
    const MASK: u32 = 0x00ff_ffff;

    /// Starts SysTick, free-running, without its interrupt.
    pub fn start() -> Self {
        // SAFETY: the SysTick registers exist on every Cortex-M core QEMU models (ARMv6-M,
        // ARMv7-M, ARMv8-M; in the Secure state these are the Secure SysTick's); nothing else
        // uses them.
        unsafe {
            ptr::write_volatile(Self::RVR, Self::MASK);
            ptr::write_volatile(Self::CVR, 0);
            // ENABLE | CLKSOURCE (processor clock), no interrupt.
            ptr::write_volatile(Self::CSR, 0b101);
        }
        Self
    }

    /// The current count, for [`Clock::since`].
    pub fn now(&self) -> u32 {
        // SAFETY: as in `start`.
        unsafe { ptr::read_volatile(Self::CVR) }
    }

    /// Ticks since `before`; right while less than one 2^24-tick wrap has passed, which one
    /// name is far from.
    pub fn since(&self, before: u32) -> u32 {
        before.wrapping_sub(self.now()) & Self::MASK
    }
}

/// Runs exactly `2 * loops` instructions (`subs` + `bne` per iteration; `loops` > 0).
pub fn count_down(loops: u32) {
    // SAFETY: a register-only countdown loop (on ARMv6-M the compiler picks a low register,
    // which `subs rN, #1` needs there).
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) loops => _,
            options(nomem, nostack),
        );
    }
}

/// What cortex-m-rt's `paint-stack` feature fills the stack with before `main`.
pub const STACK_PAINT: u32 = 0xcccc_cccc;

unsafe extern "C" {
    // From cortex-m-rt's link.x: the stack grows down from `_stack_start` towards `_stack_end`
    // (the end of .bss), and `paint-stack` paints everything in between.
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Paints the unused stack with [`STACK_PAINT`]: cortex-m-rt has done it before `main`.
#[inline(always)]
pub fn paint_stack() {}

/// The stack's lowest and one-past-highest addresses, all of it painted before use.
pub fn stack_bounds() -> (usize, usize) {
    (
        (&raw const _stack_end) as usize,
        (&raw const _stack_start) as usize,
    )
}

unsafe extern "C" {
    // cortex-m-rt's handler for every exception and interrupt nobody else handles.
    fn DefaultHandler();
}

/// The interrupt part of the vector table, which cortex-m-rt's `device` feature leaves to the
/// program (see memory/device.x): one entry, the least its link.x accepts, instead of 240. No
/// interrupt is ever enabled, so no other entry is ever read.
// SAFETY: cortex-m-rt's link.x places exactly this symbol's section after the exception vectors;
// nothing else has this name or section, and every entry is a handler that never returns.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    // A fault (a stack overflow into .bss on a small part, a bad address) must end the QEMU run
    // with a failure instead of hanging the test.
    super::fail("error: hard fault\n")
}
