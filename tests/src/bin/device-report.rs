//! The size and speed report of the firmware: for each machine and dtype, flash (vector table +
//! text + rodata + data), RAM (data + bss) and the measured stack high-water mark, and the
//! instructions per generated symbol counted under QEMU's `-icount shift=0`, turned into
//! milliseconds per name at the part's clock; and the WASM module's size, plain and gzipped,
//! in both builds (scalar and SIMD128).
//!
//! `cargo run -p namegen-tests --bin device-report` (needs qemu-system-arm,
//! qemu-system-riscv32 and the device targets, which `tests/run.sh` installs). Prints a Markdown table; `sampler/firmware/README.md` holds the last one.
//! Machine names and dtypes given as arguments narrow the report to them (`-- lm3s6965evb
//! mps2-an386 q8` measures q8 on those two machines; `-- q8` on every machine). The WASM
//! module's sizes come with no argument, or with `wasm` among them (`-- wasm` alone: only
//! those; `-- microbit wasm`: the micro:bit's rows too).

use std::process::ExitCode;
use std::time::Duration;

use object::{Object, ObjectSection};

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
    // Every machine with every dtype its flash holds, or those the arguments name; no firmware
    // when the only argument is `wasm`.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wasm = args.is_empty() || args.iter().any(|a| a == "wasm");
    let firmware = args.is_empty() || args.iter().any(|a| a != "wasm");
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
    let firmware_ok = !firmware || firmware_table(cases);
    let wasm_ok = !wasm || wasm_sizes();
    if firmware_ok && wasm_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the firmware table, one row per case; false if a case failed to build or run.
fn firmware_table(cases: Vec<(Machine, &str)>) -> bool {
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
    let mut ok = true;
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
                ok = false;
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
    ok
}

/// Prints the WASM module's sizes in both builds; false if a build failed.
fn wasm_sizes() -> bool {
    let mut ok = true;
    for build in WasmBuild::ALL {
        match build_wasm(build).and_then(|module| gzipped_size(&module)) {
            Ok((plain, gzipped)) => println!(
                "\nwasm32-unknown-unknown module, {} (sampler/wasm, without the model): {plain} \
                 bytes, {gzipped} bytes gzipped (-9)",
                build.label()
            ),
            Err(e) => {
                ok = false;
                println!("\nwasm32-unknown-unknown module, {}: {e}", build.label());
            }
        }
    }
    ok
}

/// One table row after the machine and dtype columns.
fn measure(machine: &Machine, dtype: &str, settings: &HostSettings) -> Result<String, String> {
    let elf = build_firmware(machine, &model_path(dtype), &format!("{dtype}-report"))?;
    let bytes = std::fs::read(&elf).map_err(|e| e.to_string())?;
    let sections = Sections::read(&bytes).ok_or("not an ELF file")?;
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
    /// Adds up the section sizes of an ELF file by name; `None` if it is not one.
    fn read(elf: &[u8]) -> Option<Self> {
        let file = object::File::parse(elf).ok()?;
        let mut sections = Self::default();
        for section in file.sections() {
            let size = section.size();
            match section.name().ok()? {
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
