//! The Cortex-M firmware in QEMU: for each machine and each shipped dtype it must exit
//! cleanly and print exactly the names the host's sampler makes for the same model, seed and
//! settings, with the model read in place from flash.

use std::time::Duration;

use namegen_tests::{
    DTYPES, FirmwareRun, HostSettings, LM3S811EVB, LM3S6965EVB, MPS2_AN386, Machine,
    build_firmware, host_names, model_path, run_firmware,
};

/// Soft-float on the M3 makes a name cost ~100 million emulated instructions; this is ample.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Where each part's flash ends: everything below is flash (or, on the MPS2, code memory).
const FLASH_END: u64 = 0x2000_0000;

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

fn check_machine(machine: &Machine, dtypes: &[&str]) {
    for dtype in dtypes {
        let model = model_path(dtype);
        let bytes = std::fs::read(&model).expect("the shipped model");
        let elf = build_firmware(machine, &model, dtype)
            .unwrap_or_else(|e| panic!("{} {dtype}: build failed:\n{e}", machine.name));
        for settings in settings_cases() {
            let run = run_firmware(&elf, &settings.firmware_args(), "", TIMEOUT)
                .unwrap_or_else(|e| panic!("{} {dtype}: {e}", machine.name));
            let expected: Vec<String> = host_names(&bytes, &settings)
                .into_iter()
                .map(|n| n.text)
                .collect();
            assert_clean(machine, dtype, &run);
            assert_eq!(
                run.names, expected,
                "{} {dtype} {settings:?}: the firmware's names differ from the host's",
                machine.name
            );
        }
    }
}

fn assert_clean(machine: &Machine, dtype: &str, run: &FirmwareRun) {
    let context = format!("{} {dtype}, output:\n{}", machine.name, run.output);
    assert!(run.success, "QEMU did not exit with status 0: {context}");
    assert!(
        run.errors.is_empty(),
        "the firmware reported errors: {context}"
    );
    assert!(
        run.model_address > 0 && run.model_address < FLASH_END,
        "the model is not read from flash: {context}"
    );
    assert!(
        run.stack_used > 0 && run.stack_used < run.stack_size,
        "stack use out of bounds: {context}"
    );
}

#[test]
fn lm3s6965evb_prints_the_hosts_names_for_every_dtype() {
    check_machine(&LM3S6965EVB, &DTYPES);
}

#[test]
fn mps2_an386_prints_the_hosts_names_for_every_dtype() {
    check_machine(&MPS2_AN386, &DTYPES);
}

#[test]
fn lm3s811evb_runs_the_i8_model_in_64k_flash_and_8k_ram() {
    // The linker holds the firmware to the memory map, so the map must be the part's own.
    let map = namegen_tests::repo_root().join("sampler/firmware/memory/lm3s811evb/memory.x");
    let map = std::fs::read_to_string(&map).expect("the LM3S811 memory map");
    for (region, bytes) in [("FLASH", LM3S811EVB.flash), ("RAM", LM3S811EVB.ram)] {
        let line = map
            .lines()
            .find(|l| l.trim_start().starts_with(region))
            .unwrap_or_else(|| panic!("memory.x has no {region} region:\n{map}"));
        let length = format!("LENGTH = {}K", bytes / 1024);
        assert!(
            line.contains(&length),
            "memory.x: {region} must be the part's {length}: {line}"
        );
    }
    check_machine(&LM3S811EVB, &["i8"]);
}

#[test]
fn bad_settings_end_the_run_with_a_message_and_a_failure_status() {
    let elf = build_firmware(&LM3S6965EVB, &model_path("i8"), "i8")
        .unwrap_or_else(|e| panic!("build failed:\n{e}"));
    let cases = [
        (
            "prefix=JA",
            "prefix: a character is not in the model's vocabulary",
        ),
        ("temperature=-1", "temperature: not a plain decimal"),
        ("top-p=0", "top-p must be in (0, 1]"),
        ("colour=blue", "unknown key"),
        ("count=many", "count: not a whole number"),
    ];
    for (arg, message) in cases {
        let run = run_firmware(&elf, &[arg.to_owned()], "", TIMEOUT).expect("QEMU runs");
        assert!(
            !run.success,
            "{arg}: QEMU exited with status 0:\n{}",
            run.output
        );
        assert!(
            run.names.is_empty(),
            "{arg}: names printed:\n{}",
            run.output
        );
        assert!(
            run.errors.iter().any(|e| e.starts_with(message)),
            "{arg}: expected an error starting {message:?}:\n{}",
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
