//! The size and speed report of the firmware: for each machine and dtype, flash (vector table +
//! text + rodata + data), RAM (data + bss) and the measured stack high-water mark, and the
//! instructions per generated symbol counted under QEMU's `-icount shift=0`, turned into
//! milliseconds per name at the part's clock; and the WASM module's size, plain and gzipped,
//! in both builds (scalar and SIMD128).
//!
//! `cargo run -p namegen-tests --bin device-report` (needs qemu-system-arm,
//! qemu-system-riscv32 and the device targets, which `tests/run.sh` installs). Prints a Markdown table; `sampler/firmware/README.md` holds the last one.
//! Machine names and dtypes given as arguments narrow the report to them (`-- lm3s6965evb
//! mps2-an386 q8` measures q8 on those two machines; `-- q8` on every machine).

use std::process::ExitCode;
use std::time::Duration;

use namegen_tests::{
    HostSettings, MACHINES, Machine, WasmBuild, build_firmware, build_wasm, gzipped_size,
    model_path, run_firmware, thousands,
};

/// Names generated per measurement: enough symbols that per-name figures are stable.
const NAMES: usize = 20;

/// Under `-icount shift=0` each instruction takes exactly 1 ns of virtual time, so the
/// firmware's clock readings (SysTick, or `minstret` on RISC-V) convert to instruction counts
/// (see its `calibrate`).
const ICOUNT: &str = "-icount shift=0";

fn main() -> ExitCode {
    // Every machine with every dtype its flash holds, or those the arguments name.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let named = |name: &str, all: &mut dyn Iterator<Item = &str>| {
        let given: Vec<&str> = all.filter(|n| args.iter().any(|a| a == n)).collect();
        given.is_empty() || given.contains(&name)
    };
    let cases: Vec<(Machine, &str)> = MACHINES
        .into_iter()
        .flat_map(|m| m.dtypes.iter().map(move |&d| (m, d)))
        .filter(|(m, d)| {
            named(m.name, &mut MACHINES.iter().map(|m| m.name))
                && named(
                    d,
                    &mut MACHINES.iter().flat_map(|m| m.dtypes.iter().copied()),
                )
        })
        .collect();
    let settings = HostSettings {
        count: NAMES,
        seed: 0,
        ..HostSettings::default()
    };
    println!(
        "{NAMES} names, seed {}, default settings; instructions counted with QEMU {ICOUNT}; \
         ms/name = instructions / clock (one instruction per cycle: a lower bound, flash wait \
         states and multi-cycle instructions add to it).\n",
        settings.seed
    );
    println!(
        "| machine (part, clock) | dtype | flash: code (vectors + text) + rodata + data = total (share of part) | RAM: data + bss | stack high-water | instructions / symbol | instructions / name | ms / name |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut failed = false;
    for (machine, dtype) in cases {
        let label = format!(
            "{} ({}, {} MHz)",
            machine.name,
            machine.part,
            machine.clock_hz / 1_000_000
        );
        match measure(&machine, dtype, &settings) {
            Ok(row) => println!("| {label} | {dtype} | {row} |"),
            Err(e) => {
                failed = true;
                // The linker's "will not fit in region 'FLASH': overflowed by N bytes" says most.
                let reason = e
                    .lines()
                    .find(|l| l.contains("overflowed by"))
                    .or_else(|| e.lines().find(|l| l.contains("error")))
                    .unwrap_or(&e);
                let reason = reason.rsplit("error: ").next().unwrap_or(reason).trim();
                println!("| {label} | {dtype} | does not build: {reason} | | | | | |");
            }
        }
    }
    for build in WasmBuild::ALL {
        match build_wasm(build).and_then(|module| gzipped_size(&module)) {
            Ok((plain, gzipped)) => println!(
                "\nwasm32-unknown-unknown module, {} (sampler/wasm, without the model): {plain} \
                 bytes, {gzipped} bytes gzipped (-9)",
                build.label()
            ),
            Err(e) => {
                failed = true;
                println!("\nwasm32-unknown-unknown module, {}: {e}", build.label());
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One table row after the machine and dtype columns.
fn measure(machine: &Machine, dtype: &str, settings: &HostSettings) -> Result<String, String> {
    let elf = build_firmware(machine, &model_path(dtype), &format!("{dtype}-report"))?;
    let bytes = std::fs::read(&elf).map_err(|e| e.to_string())?;
    let sections = Sections::read(&bytes).ok_or("not a 32-bit little-endian ELF")?;
    let run = run_firmware(
        &elf,
        &settings.firmware_args(),
        ICOUNT,
        Duration::from_secs(600),
    )?;
    if !run.success {
        return Err(format!("the run failed: {}", run.output));
    }
    let instructions = run.instructions().ok_or("no calibration")?;
    let per_symbol = instructions / run.symbols.max(1);
    let per_name = instructions / settings.count as u64;
    let ms = per_name as f64 * 1000.0 / machine.clock_hz as f64;
    let text = sections.vector_table + sections.text;
    let flash = text + sections.rodata + sections.data;
    Ok(format!(
        "{} + {} + {} = {} B ({:.0}%) | {} + {} B | {} B | {} | {} | {:.0}",
        text,
        sections.rodata,
        sections.data,
        flash,
        100.0 * flash as f64 / machine.flash as f64,
        sections.data,
        sections.bss,
        run.stack_used,
        thousands(per_symbol),
        thousands(per_name),
        ms
    ))
}

/// Section sizes of a firmware ELF, in bytes.
#[derive(Debug, Default)]
struct Sections {
    vector_table: u64,
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

impl Sections {
    /// Reads the section headers of a 32-bit little-endian ELF (what rust-lld writes for
    /// the thumb and riscv32 targets); no binutils for ARM or RISC-V needed.
    fn read(elf: &[u8]) -> Option<Self> {
        let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
        if elf.get(..6)? != b"\x7fELF\x01\x01" {
            return None;
        }
        let table = u32_at(0x20)? as usize;
        let entry = usize::from(u16_at(0x2e)?);
        let count = usize::from(u16_at(0x30)?);
        let names = table + entry * usize::from(u16_at(0x32)?);
        let names_offset = u32_at(names + 0x10)? as usize;
        let mut sections = Self::default();
        for i in 0..count {
            let header = table + i * entry;
            let name_at = names_offset + u32_at(header)? as usize;
            let name_len = elf.get(name_at..)?.iter().position(|&b| b == 0)?;
            let name = std::str::from_utf8(elf.get(name_at..name_at + name_len)?).ok()?;
            let size = u64::from(u32_at(header + 0x14)?);
            match name {
                ".vector_table" => sections.vector_table += size,
                ".text" => sections.text += size,
                ".rodata" => sections.rodata += size,
                ".data" => sections.data += size,
                ".bss" | ".uninit" => sections.bss += size,
                _ => {}
            }
        }
        Some(sections)
    }
}
