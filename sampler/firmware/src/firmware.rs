//! The firmware every binary runs: parse the folded model in flash, read the settings from the
//! semihosting command line, print the names, then the measurements, and exit through
//! semihosting so QEMU ends with the firmware's status.
//!
//! Output: one name per line, then lines starting with `# ` (measurements, see
//! `sampler/firmware/README.md`). Errors go to the same stream as `error: ...` and end the
//! program with a failure status. Nothing here uses `core::fmt`: it costs kilobytes the i8 model
//! needs on a 64 KB part.

use core::ptr;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hio, nr, syscall1};
use namegen_sampler::{DefaultSampler, ModelView, SampleError, Settings};

// A file of its own so that the host tests can check it against `str::parse` (tests/tests).
#[path = "decimal.rs"]
mod decimal;
use decimal::parse_decimal;

/// The folded model, chosen at build time (see build.rs). An immutable static lands in
/// `.rodata`, which the linker keeps in flash; the sampler reads it in place, copying nothing.
static MODEL: [u8; include_bytes!(env!("NAMEGEN_MODEL_FILE")).len()] =
    *include_bytes!(env!("NAMEGEN_MODEL_FILE"));

/// Names printed when the command line does not say `count=`.
const DEFAULT_COUNT: u32 = 10;

/// Bytes of semihosting command line read; longer command lines are refused, not cut.
const CMDLINE_BYTES: usize = 256;

/// Iterations of the calibration loop, two instructions each (see [`calibrate`]).
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// What cortex-m-rt's `paint-stack` feature fills the stack with before `main`.
const STACK_PAINT: u32 = 0xcccc_cccc;

unsafe extern "C" {
    // From cortex-m-rt's link.x: the stack grows down from `_stack_start` towards `_stack_end`
    // (the end of .bss), and `paint-stack` paints everything in between.
    static _stack_start: u32;
    static _stack_end: u32;
}

#[entry]
fn main() -> ! {
    let Ok(mut out) = hio::hstdout() else {
        exit(false)
    };
    let mut cmdline = [0u8; CMDLINE_BYTES];
    let ok = match run(&mut out, &mut cmdline) {
        Ok(()) => true,
        Err(message) => {
            print(&mut out, &["error: ", message, "\n"]);
            false
        }
    };
    exit(ok)
}

/// Prints the names and measurements, or says what is wrong.
fn run(out: &mut hio::HostStream, cmdline: &mut [u8; CMDLINE_BYTES]) -> Result<(), &'static str> {
    // build.rs has parsed this very file already; this can only fail on a miscompiled image.
    let model = ModelView::parse(&MODEL).map_err(|_| "the embedded model does not load")?;
    let (count, settings) = parse_cmdline(read_cmdline(cmdline)?)?;
    let mut sampler = DefaultSampler::new(&model, settings).map_err(sample_error)?;

    let clock = SysTick::start();
    // u32 is enough (2^32 ticks are minutes of device time) and keeps 64-bit division out.
    let mut ticks = 0u32;
    let mut symbols = 0u32;
    for index in 0..count {
        let before = clock.now();
        let name = sampler.name_at(u64::from(index));
        ticks = ticks.saturating_add(clock.since(before));
        // One forward pass per character (prefix included) and one for the end symbol.
        symbols = symbols.saturating_add((name.chars + usize::from(!name.cut)) as u32);
        print(out, &[name.text.as_str(), "\n"]);
    }
    let calibration = calibrate(&clock);

    print(out, &["# model bytes "]);
    print_number(out, MODEL.len() as u32, 10);
    print(out, &[" at 0x"]);
    print_number(out, MODEL.as_ptr() as u32, 16);
    print(out, &["\n# symbols "]);
    print_number(out, symbols, 10);
    print(out, &["\n# ticks "]);
    print_number(out, ticks, 10);
    print(out, &["\n# calibration "]);
    print_number(out, calibration, 10);
    print(out, &[" ticks per "]);
    print_number(out, 2 * CALIBRATION_LOOPS, 10);
    print(out, &[" instructions\n# stack used "]);
    let (used, size) = stack_use();
    print_number(out, used as u32, 10);
    print(out, &[" of "]);
    print_number(out, size as u32, 10);
    print(out, &[" bytes\n"]);
    Ok(())
}

/// The semihosting command line: QEMU's `arg=` values joined by spaces, the program name first.
fn read_cmdline(buffer: &mut [u8; CMDLINE_BYTES]) -> Result<&str, &'static str> {
    // SYS_GET_CMDLINE takes {buffer, size} and writes the length back into the block; one byte
    // is kept for the NUL it appends.
    let mut block = [buffer.as_mut_ptr() as usize, CMDLINE_BYTES - 1];
    // SAFETY: the block and the buffer it points to live across the call and are writable.
    let status = unsafe { syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return Err("the host refused the command line (longer than 255 bytes?)");
    }
    // SAFETY: the host wrote the length into the block; read it back past the compiler's view.
    let len = unsafe { ptr::read_volatile(&block[1]) }.min(CMDLINE_BYTES - 1);
    core::str::from_utf8(&buffer[..len]).map_err(|_| "the command line is not UTF-8")
}

/// `count=N` and the sampler's settings, by the names of `namegen sample`'s flags:
/// `seed= temperature= top-k= top-p= prefix= min-len= max-len=`.
fn parse_cmdline(line: &str) -> Result<(u32, Settings<'_>), &'static str> {
    let mut count = DEFAULT_COUNT;
    let mut settings = Settings::default();
    for (position, word) in line.split(' ').filter(|w| !w.is_empty()).enumerate() {
        let Some((key, value)) = word.split_once('=') else {
            if position == 0 {
                continue; // the program name
            }
            return Err("arguments are key=value");
        };
        match key {
            "count" => count = value.parse().map_err(|_| "count: not a whole number")?,
            "seed" => settings.seed = value.parse().map_err(|_| "seed: not a whole number")?,
            "temperature" => {
                settings.temperature =
                    parse_decimal(value).ok_or("temperature: not a plain decimal")?;
            }
            "top-k" => settings.top_k = value.parse().map_err(|_| "top-k: not a whole number")?,
            "top-p" => settings.top_p = parse_decimal(value).ok_or("top-p: not a plain decimal")?,
            "prefix" => settings.prefix = value,
            "min-len" => {
                settings.min_len = value.parse().map_err(|_| "min-len: not a whole number")?;
            }
            "max-len" => {
                settings.max_len = value.parse().map_err(|_| "max-len: not a whole number")?;
            }
            _ => {
                return Err(
                    "unknown key; known: count seed temperature top-k top-p prefix min-len max-len",
                );
            }
        }
    }
    Ok((count, settings))
}

/// The sampler's refusal in words, without `core::fmt`.
fn sample_error(error: SampleError) -> &'static str {
    match error {
        SampleError::Temperature => "temperature must be a finite number >= 0",
        SampleError::TopP => "top-p must be in (0, 1]",
        SampleError::Lengths => "max-len must be at least 1, at least min-len, and fit a name",
        SampleError::Prefix(_) => "prefix: a character is not in the model's vocabulary",
        SampleError::PrefixTooLong => "prefix: longer than max-len",
        SampleError::TooWide(_) => "the model is wider than the sampler's buffers",
    }
}

/// The SysTick timer as a free-running 24-bit down-counter on the processor clock.
///
/// Under QEMU's `-icount shift=0` every instruction advances virtual time by exactly 1 ns, so
/// ticks are instructions times a fixed ratio, which [`calibrate`] measures; without
/// `-icount` the ticks follow the host's clock and mean nothing.
struct SysTick;

impl SysTick {
    const CSR: *mut u32 = 0xe000_e010 as *mut u32;
    const RVR: *mut u32 = 0xe000_e014 as *mut u32;
    const CVR: *mut u32 = 0xe000_e018 as *mut u32;
    const MASK: u32 = 0x00ff_ffff;

    fn start() -> Self {
        // SAFETY: the SysTick registers exist on every ARMv7-M core; nothing else uses them.
        unsafe {
            ptr::write_volatile(Self::RVR, Self::MASK);
            ptr::write_volatile(Self::CVR, 0);
            // ENABLE | CLKSOURCE (processor clock), no interrupt.
            ptr::write_volatile(Self::CSR, 0b101);
        }
        Self
    }

    fn now(&self) -> u32 {
        // SAFETY: as in `start`.
        unsafe { ptr::read_volatile(Self::CVR) }
    }

    /// Ticks since `before`; right while less than one 2^24-tick wrap has passed, which one
    /// name is far from.
    fn since(&self, before: u32) -> u32 {
        before.wrapping_sub(self.now()) & Self::MASK
    }
}

/// SysTick ticks for a loop of exactly `2 * CALIBRATION_LOOPS` instructions.
fn calibrate(clock: &SysTick) -> u32 {
    let before = clock.now();
    // SAFETY: a register-only countdown loop: `subs` + `bne` per iteration.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_LOOPS => _,
            options(nomem, nostack),
        );
    }
    clock.since(before)
}

/// Bytes of stack ever used (the deepest word whose paint is gone) and the stack's size.
fn stack_use() -> (usize, usize) {
    let bottom = (&raw const _stack_end) as usize;
    let top = (&raw const _stack_start) as usize;
    let mut address = bottom;
    // SAFETY: every word in [bottom, top) is RAM that cortex-m-rt painted before main.
    while address < top && unsafe { ptr::read_volatile(address as *const u32) } == STACK_PAINT {
        address += 4;
    }
    (top - address, top - bottom)
}

fn print(out: &mut hio::HostStream, parts: &[&str]) {
    for part in parts {
        // Nowhere to report a failing host stream; the test sees the output missing.
        let _ = out.write_all(part.as_bytes());
    }
}

fn print_number(out: &mut hio::HostStream, mut value: u32, radix: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[(value % radix) as usize];
        value /= radix;
        if value == 0 {
            break;
        }
    }
    let _ = out.write_all(&digits[start..]);
}

/// Ends the QEMU session with status 0 (`ok`) or 1.
fn exit(ok: bool) -> ! {
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        print(&mut out, &["error: panicked"]);
        if let Some(location) = info.location() {
            print(&mut out, &[" at ", location.file(), ":"]);
            print_number(&mut out, location.line(), 10);
        }
        print(&mut out, &["\n"]);
    }
    exit(false)
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    // A fault (a stack overflow into .bss on a small part, a bad address) must end the QEMU run
    // with a failure instead of hanging the test.
    if let Ok(mut out) = hio::hstdout() {
        print(&mut out, &["error: hard fault\n"]);
    }
    exit(false)
}
