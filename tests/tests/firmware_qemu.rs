//! The firmware in QEMU (Cortex-M0, M3, M4F, M7, M33 and RISC-V): for each machine and each
//! shipped dtype that fits it, it must exit cleanly and print exactly the names the host's
//! sampler makes for the same model, seed and settings, with the model read in place from flash
//! and the stack within the part's RAM. On a part without an FPU, a q8 firmware must link no
//! soft-float routine, and a float model's firmware must (which shows the check sees them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use object::{Object, ObjectSegment, ObjectSymbol};

use namegen_tests::{
    DTYPES, FirmwareRun, HostSettings, LM3S811EVB, LM3S6965EVB, MACHINES, MICROBIT, MPS2_AN386,
    MPS2_AN500, MPS2_AN505, Machine, MemoryMap, RISCV32_VIRT, build_firmware, host_names,
    model_path, run_firmware,
};

/// Soft-float on the M0, M3 and RV32IMC makes a name cost ~100 million emulated instructions;
/// this is ample.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Settings that exercise every knob the firmware parses.
fn settings_cases() -> Vec<HostSettings> {
    vec![
        HostSettings {
            count: 6,
            seed: 42,
            ..HostSettings::default()
        },
        HostSettings {
            count: 4,
            seed: 7,
            temperature: 0.8,
            top_k: 5,
            prefix: "ja".to_owned(),
            ..HostSettings::default()
        },
        HostSettings {
            count: 3,
            seed: 2024,
            temperature: 1.5,
            top_p: 0.9,
            min_len: 4,
            max_len: 7,
            ..HostSettings::default()
        },
    ]
}

/// Checks `machine` with every dtype that fits it: the memory map, then the names, and on a
/// part without an FPU the soft-float each firmware links.
fn check_machine(machine: &Machine) {
    check_memory_map(machine);
    for dtype in machine.dtypes {
        let elf = check_names(machine, &model_path(dtype), dtype);
        if !has_fpu(machine) {
            check_soft_float(machine, dtype, &elf);
        }
    }
}

/// Builds `machine`'s firmware with `model` (its copy tagged `tag`), checks that it prints
/// the host's names for every case of [`settings_cases`] and returns the firmware's path.
fn check_names(machine: &Machine, model: &Path, tag: &str) -> PathBuf {
    let bytes = std::fs::read(model).expect("the model file");
    let elf = build_firmware(machine, model, tag)
        .unwrap_or_else(|e| panic!("{} {tag}: build failed:\n{e}", machine.name));
    for settings in settings_cases() {
        let run = run_firmware(&elf, &settings.firmware_args(), "", TIMEOUT)
            .unwrap_or_else(|e| panic!("{} {tag}: {e}", machine.name));
        let expected: Vec<String> = host_names(&bytes, &settings)
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert_clean(machine, tag, &run);
        assert_eq!(
            run.names, expected,
            "{} {tag} {settings:?}: the firmware's names differ from the host's",
            machine.name
        );
    }
    elf
}

fn assert_clean(machine: &Machine, dtype: &str, run: &FirmwareRun) {
    let context = format!("{} {dtype}, output:\n{}", machine.name, run.output);
    assert!(run.success, "QEMU did not exit with status 0: {context}");
    assert!(
        run.errors.is_empty(),
        "the firmware reported errors: {context}"
    );
    let flash = machine.flash_origin..machine.flash_origin + machine.flash;
    assert!(
        flash.contains(&run.model_address),
        "the model is not read from flash ({flash:#x?}): {context}"
    );
    assert!(
        run.stack_used > 0 && run.stack_used < run.stack_size && run.stack_size <= machine.ram,
        "stack use out of bounds: {context}"
    );
}

/// Whether `machine`'s core has an FPU: the hard-float ABI targets (`eabihf`) are the
/// Cortex-M4F, M7 and M33 machines; the Cortex-M0, the M3 and the RV32IMC have none.
fn has_fpu(machine: &Machine) -> bool {
    machine.target.ends_with("eabihf")
}

/// A q8 firmware draws in integers (`model/FORMAT.md`, "The q8 dtype"), so on a part without an
/// FPU it links no soft-float routine; the float dtypes compute in f32 and must link some,
/// or the check could not see them.
fn check_soft_float(machine: &Machine, dtype: &str, elf: &Path) {
    let bytes = std::fs::read(elf).expect("the firmware ELF");
    let file = object::File::parse(&*bytes).expect("an ELF file");
    let float: Vec<&str> = file
        .symbols()
        .filter_map(|symbol| symbol.name().ok())
        .filter(|name| is_soft_float(name))
        .collect();
    if dtype == "q8" {
        assert!(
            float.is_empty(),
            "{} q8 links soft-float: {float:?}",
            machine.name
        );
    } else {
        assert!(
            !float.is_empty(),
            "{} {dtype}: no soft-float symbol found in a float model's firmware",
            machine.name
        );
    }
}

/// Whether `name` is a soft-float routine: the ARM EABI's (`__aeabi_fadd`, `__aeabi_d2f`,
/// ...), the libgcc-named ones compiler-builtins provides on every target (`__addsf3`,
/// `__gtdf2`, `__fixsfsi`, `__floatunsisf`, ..., also as mangled paths ending in those names),
/// or libm's `expf` and `exp2f`.
fn is_soft_float(name: &str) -> bool {
    const LIBGCC_ENDINGS: [&str; 12] = [
        "sf2", "sf3", "df2", "df3", "sfsi", "sfdi", "dfsi", "dfdi", "sisf", "disf", "sidf", "didf",
    ];
    name.starts_with("__aeabi_f")
        || name.starts_with("__aeabi_d")
        || (name.contains("__") && LIBGCC_ENDINGS.iter().any(|end| name.ends_with(end)))
        || name.contains("expf")
        || name.contains("exp2f")
}

/// The linker holds the firmware to the memory map, so the map must be the part's own.
fn check_memory_map(machine: &Machine) {
    let map = MemoryMap::read(machine).unwrap_or_else(|e| panic!("{}: {e}", machine.name));
    let expected = MemoryMap {
        flash_origin: machine.flash_origin,
        flash: machine.flash,
        ram_origin: machine.ram_origin,
        ram: machine.ram,
    };
    assert_eq!(
        map, expected,
        "{}: memory.x differs from the part's map",
        machine.name
    );
}

#[test]
fn every_machine_has_a_memory_map_a_runner_entry_and_a_binary() {
    let firmware = namegen_tests::repo_root().join("sampler/firmware");
    let runner = std::fs::read_to_string(firmware.join("qemu-run.sh")).expect("qemu-run.sh");
    let manifest = std::fs::read_to_string(firmware.join("Cargo.toml")).expect("Cargo.toml");
    for machine in MACHINES {
        check_memory_map(&machine);
        assert!(
            runner.contains(&format!("    {}*) ", machine.name)),
            "qemu-run.sh does not know {}",
            machine.name
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", machine.name)),
            "Cargo.toml has no binary {}",
            machine.name
        );
        for dtype in machine.dtypes {
            assert!(
                DTYPES.contains(dtype),
                "{}: unknown dtype {dtype}",
                machine.name
            );
        }
    }
}

#[test]
fn lm3s6965evb_prints_the_hosts_names_for_every_dtype() {
    assert_eq!(LM3S6965EVB.dtypes, DTYPES);
    check_machine(&LM3S6965EVB);
}

#[test]
fn mps2_an386_prints_the_hosts_names_for_every_dtype() {
    assert_eq!(MPS2_AN386.dtypes, DTYPES);
    check_machine(&MPS2_AN386);
}

#[test]
fn microbit_cortex_m0_prints_the_hosts_names_for_every_dtype_in_256k_flash_and_16k_ram() {
    // Even the f32 model (187 KB of weights) fits the nRF51822's 256 KB.
    assert_eq!(MICROBIT.dtypes, DTYPES);
    check_machine(&MICROBIT);
}

#[test]
fn mps2_an500_cortex_m7_prints_the_hosts_names_for_every_dtype() {
    assert_eq!(MPS2_AN500.dtypes, DTYPES);
    check_machine(&MPS2_AN500);
}

#[test]
fn mps2_an505_cortex_m33_prints_the_hosts_names_for_every_dtype() {
    assert_eq!(MPS2_AN505.dtypes, DTYPES);
    check_machine(&MPS2_AN505);
}

#[test]
fn riscv32_virt_prints_the_hosts_names_for_every_dtype() {
    assert_eq!(RISCV32_VIRT.dtypes, DTYPES);
    check_machine(&RISCV32_VIRT);
}

#[test]
fn lm3s811evb_runs_the_i8_and_q8_models_in_64k_flash_and_8k_ram() {
    assert_eq!((LM3S811EVB.flash, LM3S811EVB.ram), (64 * 1024, 8 * 1024));
    assert_eq!(LM3S811EVB.dtypes, ["i8", "q8"]);
    check_machine(&LM3S811EVB);
}

#[test]
fn mps2_an386_runs_q8_layers_of_odd_widths() {
    // The DSP kernel (the M4's and M7's) takes two rows at a time, 32 weights a step, then 16,
    // 8, 4 and one by one; the shipped model's shapes (30, 100 and 27 inputs; 100 and 27 rows)
    // leave some of those paths unrun. Inputs of 27, 97, 98, 99, 100 and 45 codes: remainders
    // 27, 1, 2, 3, 4 and 13 after the 32s. Layers of 97, 99, 45 and 27 rows end in a group of
    // one row.
    let model = namegen_tests::scratch_dir("q8-odd-widths").join("model.safetensors");
    std::fs::write(&model, narrowed_q8_model(9, &[97, 98, 99, 100, 45])).expect("write it");
    check_names(&MPS2_AN386, &model, "q8-odd-widths");
}

/// The shipped q8 model cut down to `embed` embedding columns and `hidden` units per hidden
/// layer (at most its own): each tensor keeps its first rows and the columns that feed them.
/// Fewer terms only shrink the loader's overflow bound, so the cut model is valid.
fn narrowed_q8_model(embed: usize, hidden: &[usize]) -> Vec<u8> {
    let bytes = std::fs::read(model_path("q8")).expect("the shipped model");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    let meta = |key: &str| -> usize {
        header["__metadata__"][key]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (block, full_embed) = (meta("block_size"), meta("embed_dim"));
    // The kept indices along each axis of each tensor, by name.
    let first = |n: usize| (0..n).collect::<Vec<usize>>();
    let embedded: Vec<usize> = (0..block)
        .flat_map(|slot| (0..embed).map(move |c| slot * full_embed + c))
        .collect();
    let kept = |name: &str, shape: &[usize]| -> Vec<Vec<usize>> {
        let layer = name
            .strip_prefix("layers.")
            .and_then(|r| r.split('.').next());
        let layer = layer.map(|i| i.parse::<usize>().unwrap());
        let rows = match layer {
            Some(i) if i < hidden.len() => first(hidden[i]),
            _ => first(shape[0]),
        };
        match (name, layer) {
            ("emb.weight", _) => vec![rows, first(embed)],
            (_, Some(0)) if shape.len() == 2 => vec![rows, embedded.clone()],
            (_, Some(i)) if shape.len() == 2 => vec![rows, first(hidden[i - 1])],
            _ => vec![rows],
        }
    };
    let mut tensors = serde_json::Map::new();
    let mut out_data = Vec::new();
    let entries = header.as_object().unwrap().iter();
    for (name, entry) in entries.filter(|(name, _)| *name != "__metadata__") {
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone()).unwrap();
        let [begin, end]: [usize; 2] =
            serde_json::from_value(entry["data_offsets"].clone()).unwrap();
        let size = (end - begin) / shape.iter().product::<usize>();
        let axes = kept(name, &shape);
        let begin_out = out_data.len();
        let cols = shape.get(1).copied().unwrap_or(1);
        for &r in &axes[0] {
            for &c in axes.get(1).unwrap_or(&vec![0]) {
                let at = begin + (r * cols + c) * size;
                out_data.extend_from_slice(&data[at..at + size]);
            }
        }
        let new_shape: Vec<usize> = axes.iter().map(Vec::len).collect();
        let offsets = [begin_out, out_data.len()];
        tensors.insert(
            name.clone(),
            serde_json::json!({"dtype": entry["dtype"], "shape": new_shape, "data_offsets": offsets}),
        );
    }
    let mut metadata = header["__metadata__"].clone();
    metadata["embed_dim"] = embed.to_string().into();
    let hidden: Vec<String> = hidden.iter().map(usize::to_string).collect();
    metadata["hidden"] = hidden.join(",").into();
    tensors.insert("__metadata__".into(), metadata);
    let header = serde_json::to_vec(&tensors).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&out_data);
    file
}

#[test]
fn bad_settings_end_the_run_with_a_message_and_a_failure_status() {
    // Semihosting, the command line and the failure exit differ between the architectures.
    for machine in [LM3S6965EVB, RISCV32_VIRT] {
        check_bad_settings(&machine);
    }
}

fn check_bad_settings(machine: &Machine) {
    let elf = build_firmware(machine, &model_path("i8"), "i8")
        .unwrap_or_else(|e| panic!("{}: build failed:\n{e}", machine.name));
    let cases = [
        (
            "prefix=JA",
            "prefix: a character is not in the model's vocabulary",
        ),
        ("temperature=-1", "temperature: not a plain decimal"),
        ("top-p=0", "top-p must be in (0, 1]"),
        ("colour=blue", "unknown key"),
        ("count=many", "count: not a whole number"),
        ("count=4294967296", "count: above 4294967295"),
    ];
    for (arg, message) in cases {
        let run = run_firmware(&elf, &[arg.to_owned()], "", TIMEOUT).expect("QEMU runs");
        let name = machine.name;
        assert!(
            !run.success,
            "{name} {arg}: QEMU exited with status 0:\n{}",
            run.output
        );
        assert!(
            run.names.is_empty(),
            "{name} {arg}: names printed:\n{}",
            run.output
        );
        assert!(
            run.errors.iter().any(|e| e.starts_with(message)),
            "{name} {arg}: expected an error starting {message:?}:\n{}",
            run.output
        );
    }
}

#[test]
fn a_bad_model_file_fails_the_build_with_the_loaders_message() {
    let good = std::fs::read(model_path("i8")).expect("the shipped model");
    let dir = namegen_tests::device_target_dir().join("bad-models");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let bad = dir.join("truncated.safetensors");
    std::fs::write(&bad, &good[..good.len() / 2]).expect("write the bad file");
    let error =
        build_firmware(&LM3S6965EVB, &bad, "bad").expect_err("a truncated model must not build");
    assert!(
        error.contains("NAMEGEN_MODEL=") && error.contains("truncated.safetensors"),
        "the build error does not name the file:\n{error}"
    );
}

#[test]
fn a_fault_or_trap_ends_the_run_with_a_message_and_a_failure_status() {
    // An undefined instruction in place of `main`'s first: the architecture's fault handler
    // (cortex-m-rt's HardFault, riscv-rt's ExceptionHandler) must print and fail, not hang.
    let cases = [
        (LM3S811EVB, &[0x00, 0xde][..], "hard fault"), // Thumb `udf #0`
        (MICROBIT, &[0x00, 0xde][..], "hard fault"),
        (MPS2_AN505, &[0x00, 0xde][..], "hard fault"),
        (RISCV32_VIRT, &[0, 0, 0, 0][..], "trap"), // all zeros: an illegal instruction
    ];
    for (machine, undefined, message) in cases {
        let elf = build_firmware(&machine, &model_path("i8"), "i8")
            .unwrap_or_else(|e| panic!("{}: build failed:\n{e}", machine.name));
        let mut bytes = std::fs::read(&elf).expect("the firmware ELF");
        let at = file_offset_of_symbol(&bytes, "main")
            .unwrap_or_else(|| panic!("{}: no `main` in the ELF", machine.name));
        bytes[at..at + undefined.len()].copy_from_slice(undefined);
        let broken = elf.with_file_name(format!("{}-fault", machine.name));
        std::fs::write(&broken, &bytes).expect("write the broken firmware");
        let run = run_firmware(&broken, &[], "", TIMEOUT).expect("QEMU runs");
        assert!(
            !run.success && run.names.is_empty() && run.errors == [message],
            "{}: expected `error: {message}` and a failure status:\n{}",
            machine.name,
            run.output
        );
    }
}

/// Where the code of the function `name` starts in an ELF file: its symbol's address (the
/// Thumb bit cleared) through the segment that loads it.
fn file_offset_of_symbol(elf: &[u8], name: &str) -> Option<usize> {
    let file = object::File::parse(elf).ok()?;
    let address = file.symbols().find(|s| s.name() == Ok(name))?.address() & !1;
    file.segments().find_map(|segment| {
        let (offset, size) = segment.file_range();
        let start = segment.address();
        (start..start + size)
            .contains(&address)
            .then(|| (offset + address - start) as usize)
    })
}
