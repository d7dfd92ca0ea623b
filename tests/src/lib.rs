//! Shared helpers of the cross-target tests and the device report: where things are, the host's
//! own names for a model and settings (what every device must print), and building and booting
//! the firmware in QEMU.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use namegen_model::Dtype;
use namegen_sampler::{DefaultSampler, ModelView, Settings};

/// The dtypes a folded model is shipped in, by name: those of [`Dtype::ALL`].
pub const DTYPES: [&str; Dtype::ALL.len()] = {
    let mut names = [""; Dtype::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Dtype::ALL[i].name();
        i += 1;
    }
    names
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `n` with its thousands separated by commas, as the docs write figures.
///
/// ```
/// assert_eq!(namegen_tests::thousands(8_755_845), "8,755,845");
/// assert_eq!(namegen_tests::thousands(999), "999");
/// ```
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The shipped folded model of `dtype`: `data/model-<dtype>.safetensors`.
pub fn model_path(dtype: &str) -> PathBuf {
    repo_root()
        .join("data")
        .join(format!("model-{dtype}.safetensors"))
}

/// Where the tests build device programs: a target directory of their own under `target/`, so
/// they neither wait for nor invalidate the host build.
pub fn device_target_dir() -> PathBuf {
    repo_root().join("target").join("devices")
}

/// Sampling settings, owned, as every front end takes them.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSettings {
    /// Names to generate.
    pub count: usize,
    /// The seed.
    pub seed: u64,
    /// Temperature; written for the firmware with `{}`, whose shortest round-trip form the
    /// firmware's exact decimal parser reads back to the same f32.
    pub temperature: f32,
    /// Top-k, 0 for all.
    pub top_k: usize,
    /// Top-p, 1 for all.
    pub top_p: f32,
    /// Prefix of every name.
    pub prefix: String,
    /// Minimum length.
    pub min_len: usize,
    /// Maximum length.
    pub max_len: usize,
}

impl Default for HostSettings {
    fn default() -> Self {
        let s = Settings::default();
        Self {
            count: 10,
            seed: s.seed,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            prefix: String::new(),
            min_len: s.min_len,
            max_len: s.max_len,
        }
    }
}

impl HostSettings {
    /// The sampler's settings.
    pub fn settings(&self) -> Settings<'_> {
        Settings {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            prefix: &self.prefix,
            min_len: self.min_len,
            max_len: self.max_len,
        }
    }

    /// The settings as the JS wrapper's `generate` takes them (`Namegen`, `NamegenWorker`).
    /// Floats go as the f32's exact value, which the module rounds back to the same f32; the
    /// seed as a decimal string (beyond 2^53).
    pub fn js(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "temperature": f64::from(self.temperature),
            "topK": self.top_k,
            "topP": f64::from(self.top_p),
            "seed": self.seed.to_string(),
            "prefix": self.prefix,
            "minLen": self.min_len,
            "maxLen": self.max_len,
        })
    }

    /// The firmware's command line (`key=value`, the names of `namegen sample`'s flags).
    pub fn firmware_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("count={}", self.count),
            format!("seed={}", self.seed),
            format!("temperature={}", self.temperature),
            format!("top-k={}", self.top_k),
            format!("top-p={}", self.top_p),
            format!("min-len={}", self.min_len),
            format!("max-len={}", self.max_len),
        ];
        if !self.prefix.is_empty() {
            args.push(format!("prefix={}", self.prefix));
        }
        args
    }
}

/// One name as the host makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostName {
    /// The name.
    pub text: String,
    /// Its natural-log likelihood under the model.
    pub log_likelihood: f64,
    /// Whether it was cut at `max_len`.
    pub cut: bool,
}

/// The names the host's sampler makes for `model` and `settings`, one by one (the same code
/// path the devices run).
pub fn host_names(model: &[u8], settings: &HostSettings) -> Vec<HostName> {
    host_names_from(model, settings, 0)
}

/// The host's names `first..first + count` of these settings (`Sampler::name_at`, the names
/// `namegen sample` makes at those places), for the front ends that start past name 0.
pub fn host_names_from(model: &[u8], settings: &HostSettings, first: u64) -> Vec<HostName> {
    let view = ModelView::parse(model).expect("the host loads the model");
    let mut sampler = DefaultSampler::new(&view, settings.settings()).expect("valid settings");
    (0..settings.count as u64)
        .map(|i| sampler.name_at(first + i))
        .map(|n| HostName {
            text: n.text.as_str().to_owned(),
            log_likelihood: n.log_likelihood,
            cut: n.cut,
        })
        .collect()
}

/// Asserts that a device's name is the host's, bit for bit (the log-likelihood's bits too, so
/// -0.0 and NaN cannot pass for their neighbours); `what` names the case in the message.
pub fn assert_same_name(got: &HostName, expected: &HostName, what: &str) {
    assert_eq!(got.text, expected.text, "{what}");
    assert_eq!(got.cut, expected.cut, "{what}: {}", expected.text);
    assert_eq!(
        got.log_likelihood.to_bits(),
        expected.log_likelihood.to_bits(),
        "{what}: {}: {} vs {}",
        expected.text,
        got.log_likelihood,
        expected.log_likelihood
    );
}

/// A float a JS driver printed with `String()`, which round-trips (std's parser is exact);
/// panics on anything else.
pub fn js_float(value: &serde_json::Value) -> f64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a float string: {value}"))
}

/// A name as the Node and Chromium drivers report it, `{name, logLikelihood, cut}`; panics on
/// another shape.
pub fn js_name(value: &serde_json::Value) -> HostName {
    HostName {
        text: value["name"].as_str().expect("a name").to_owned(),
        log_likelihood: js_float(&value["logLikelihood"]),
        cut: value["cut"].as_bool().expect("a cut flag"),
    }
}

/// Runs `cargo` in `dir` with `args` and extra `envs` (which may set another target
/// directory), the target directory being [`device_target_dir`]; `Err` carries cargo's stderr.
pub fn cargo(dir: &Path, args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> Result<(), String> {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", device_target_dir());
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A QEMU machine the firmware runs on, and the part whose memory map its firmware is linked
/// against (`sampler/firmware/memory/<name>/memory.x`, which [`MemoryMap::read`] reads back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The firmware binary's name, which tells `qemu-run.sh` the QEMU machine: the QEMU
    /// machine's own name, but `riscv32-virt` for `qemu-system-riscv32 -machine virt`.
    pub name: &'static str,
    /// The Rust target.
    pub target: &'static str,
    /// The cargo profile of its firmware: `release` (size first) or `speed` (see
    /// sampler/firmware/Cargo.toml).
    pub profile: &'static str,
    /// The part QEMU models (or whose memory map the firmware takes).
    pub part: &'static str,
    /// The part's usual clock, for turning instructions into time.
    pub clock_hz: u64,
    /// Where the flash (or the code memory standing in for it) starts.
    pub flash_origin: u64,
    /// Flash of the part, in bytes.
    pub flash: u64,
    /// Where the RAM starts.
    pub ram_origin: u64,
    /// RAM of the part, in bytes.
    pub ram: u64,
    /// The shipped dtypes whose firmware fits the part (f32 weights are 187 KB, f16 95 KB,
    /// i8 and q8 51 KB).
    pub dtypes: &'static [&'static str],
    /// Firmware features its builds add to their dtype's: `armv7m` (q8's assembly, see
    /// sampler/firmware/Cargo.toml) on the Cortex-M3 and M33 parts with flash to spare.
    pub features: &'static [&'static str],
}

/// TI LM3S6965: Cortex-M3, 50 MHz, 256 KB flash, 64 KB RAM, no FPU.
pub const LM3S6965EVB: Machine = Machine {
    name: "lm3s6965evb",
    target: "thumbv7m-none-eabi",
    profile: "release",
    part: "TI LM3S6965 (Cortex-M3, no FPU)",
    clock_hz: 50_000_000,
    flash_origin: 0,
    flash: 256 * 1024,
    ram_origin: 0x2000_0000,
    ram: 64 * 1024,
    dtypes: &DTYPES,
    features: &["armv7m"],
};

/// TI LM3S811: Cortex-M3, 50 MHz, 64 KB flash, 8 KB RAM, no FPU: only the i8 and q8 models
/// fit.
pub const LM3S811EVB: Machine = Machine {
    name: "lm3s811evb",
    target: "thumbv7m-none-eabi",
    profile: "release",
    part: "TI LM3S811 (Cortex-M3, no FPU)",
    clock_hz: 50_000_000,
    flash_origin: 0,
    flash: 64 * 1024,
    ram_origin: 0x2000_0000,
    ram: 8 * 1024,
    dtypes: &["i8", "q8"],
    features: &[],
};

/// ARM MPS2 with AN386: Cortex-M4 with single-precision FPU at 25 MHz (the FPGA's clock), 4 MB
/// of code SSRAM and 4 MB of data SSRAM.
pub const MPS2_AN386: Machine = Machine {
    name: "mps2-an386",
    target: "thumbv7em-none-eabihf",
    profile: "speed",
    part: "ARM MPS2 AN386 (Cortex-M4F)",
    clock_hz: 25_000_000,
    flash_origin: 0,
    flash: 4 * 1024 * 1024,
    ram_origin: 0x2000_0000,
    ram: 4 * 1024 * 1024,
    dtypes: &DTYPES,
    features: &[],
};

/// BBC micro:bit v1, Nordic nRF51822: Cortex-M0 (ARMv6-M, no FPU, no divide) at 16 MHz, 256 KB
/// flash, 16 KB RAM.
pub const MICROBIT: Machine = Machine {
    name: "microbit",
    target: "thumbv6m-none-eabi",
    profile: "release",
    part: "Nordic nRF51822 (Cortex-M0, no FPU)",
    clock_hz: 16_000_000,
    flash_origin: 0,
    flash: 256 * 1024,
    ram_origin: 0x2000_0000,
    ram: 16 * 1024,
    dtypes: &DTYPES,
    features: &[],
};

/// ARM MPS2 with AN500: Cortex-M7 at 25 MHz (the FPGA's clock, as QEMU models it too), the
/// AN386's map: 4 MB of code SSRAM and 4 MB of data SSRAM. The firmware uses the FPU's
/// single-precision instructions (`thumbv7em-none-eabihf`).
pub const MPS2_AN500: Machine = Machine {
    name: "mps2-an500",
    part: "ARM MPS2 AN500 (Cortex-M7F)",
    ..MPS2_AN386
};

/// ARM MPS2 with AN505: Cortex-M33 (ARMv8-M Mainline, FPU) at 20 MHz (the image's clock, as
/// QEMU models it), run in the Secure state: 4 MB of code SSRAM at 0x10000000 and 4 MB of data
/// SSRAM at 0x38000000, the Secure aliases.
pub const MPS2_AN505: Machine = Machine {
    name: "mps2-an505",
    target: "thumbv8m.main-none-eabihf",
    profile: "speed",
    part: "ARM MPS2 AN505 (Cortex-M33F)",
    clock_hz: 20_000_000,
    flash_origin: 0x1000_0000,
    flash: 4 * 1024 * 1024,
    ram_origin: 0x3800_0000,
    ram: 4 * 1024 * 1024,
    dtypes: &DTYPES,
    features: &["armv7m"],
};

/// QEMU's RISC-V `virt` board laid out like an Espressif ESP32-C3: RV32IMC (no FPU) at 160 MHz,
/// 4 MB of flash (in virt's NOR flash at 0x20000000), 400 KB of SRAM (in virt's DRAM at
/// 0x80000000).
pub const RISCV32_VIRT: Machine = Machine {
    name: "riscv32-virt",
    target: "riscv32imc-unknown-none-elf",
    profile: "release",
    part: "ESP32-C3-like RV32IMC on QEMU virt",
    clock_hz: 160_000_000,
    flash_origin: 0x2000_0000,
    flash: 4 * 1024 * 1024,
    ram_origin: 0x8000_0000,
    ram: 400 * 1024,
    dtypes: &DTYPES,
    features: &[],
};

/// Every machine the firmware runs on.
pub const MACHINES: [Machine; 7] = [
    LM3S6965EVB,
    MPS2_AN386,
    LM3S811EVB,
    MICROBIT,
    MPS2_AN500,
    MPS2_AN505,
    RISCV32_VIRT,
];

/// The regions of a machine's `memory.x`, as the linker sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// FLASH's origin.
    pub flash_origin: u64,
    /// FLASH's length, bytes.
    pub flash: u64,
    /// RAM's origin.
    pub ram_origin: u64,
    /// RAM's length, bytes.
    pub ram: u64,
}

impl MemoryMap {
    /// Reads `sampler/firmware/memory/<machine>/memory.x`: its `FLASH` and `RAM` lines
    /// (`NAME : ORIGIN = 0x..., LENGTH = <n>[K|M]`).
    pub fn read(machine: &Machine) -> Result<Self, String> {
        let path = repo_root()
            .join("sampler/firmware/memory")
            .join(machine.name)
            .join("memory.x");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let region = |name: &str| -> Result<(u64, u64), String> {
            let line = text
                .lines()
                .find(|l| {
                    l.split_once(':')
                        .is_some_and(|(n, rest)| n.trim() == name && rest.contains("ORIGIN"))
                })
                .ok_or_else(|| format!("{}: no {name} region", path.display()))?;
            let value = |key: &str| {
                line.split(',')
                    .find_map(|part| part.split_once(key).map(|(_, v)| v))
                    .and_then(|v| parse_size(v.trim_start().trim_start_matches('=').trim()))
                    .ok_or_else(|| format!("{}: {name}: no {key}: {line}", path.display()))
            };
            Ok((value("ORIGIN")?, value("LENGTH")?))
        };
        let (flash_origin, flash) = region("FLASH")?;
        let (ram_origin, ram) = region("RAM")?;
        Ok(Self {
            flash_origin,
            flash,
            ram_origin,
            ram,
        })
    }
}

/// A linker-script number: `0x` hex or decimal, with an optional `K` or `M` suffix.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'K' => (&text[..text.len() - 1], 1024),
        b'M' => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let value = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(value * scale)
}

/// Cargo builds of the firmware embed the model through an environment variable, so two of
/// them at once would overwrite each other's binary: builds take this lock and copy the result.
static FIRMWARE_BUILD: Mutex<()> = Mutex::new(());

/// Builds the firmware for `machine` with `model` embedded and returns a copy of the ELF that
/// no later build overwrites. `Err` carries cargo's message (for example a flash overflow).
///
/// Only the model's dtype kernel is linked (`--no-default-features --features <dtype>`, plus
/// the machine's [`Machine::features`]), as a firmware for one model is meant to be built; a
/// file the host cannot load gets the default features, so that the firmware's build script
/// reports it.
pub fn build_firmware(machine: &Machine, model: &Path, tag: &str) -> Result<PathBuf, String> {
    let _guard = FIRMWARE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo_root().join("sampler").join("firmware");
    let bytes = std::fs::read(model).unwrap_or_default();
    let dtype = ModelView::parse(&bytes).map(|view| view.dtype().name());
    let mut args = vec![
        "build",
        "--profile",
        machine.profile,
        "--target",
        machine.target,
        "--bin",
        machine.name,
    ];
    let features: String;
    if let Ok(dtype) = dtype {
        features = [dtype]
            .iter()
            .chain(machine.features)
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        args.extend(["--no-default-features", "--features", &features]);
    }
    cargo(&dir, &args, &[("NAMEGEN_MODEL", model.as_os_str())])?;
    let built = device_target_dir()
        .join(machine.target)
        .join(machine.profile)
        .join(machine.name);
    let copies = device_target_dir().join("firmware");
    std::fs::create_dir_all(&copies).map_err(|e| e.to_string())?;
    let copy = copies.join(format!("{}-{tag}", machine.name));
    // Written under another name, then renamed into place: another test may be booting the
    // previous copy of the same machine and tag, and a copy rewritten in place would hand its
    // QEMU a half-written file (a run that prints nothing). A rename leaves that file whole.
    let partial = copies.join(format!("{}-{tag}.partial", machine.name));
    std::fs::copy(&built, &partial).map_err(|e| format!("{}: {e}", built.display()))?;
    std::fs::rename(&partial, &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(copy)
}

/// What a firmware run printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FirmwareRun {
    /// Whether QEMU exited with status 0 (the firmware's semihosting exit).
    pub success: bool,
    /// The names, in order.
    pub names: Vec<String>,
    /// `error: ...` lines.
    pub errors: Vec<String>,
    /// Address of the model bytes the firmware read.
    pub model_address: u64,
    /// Forward passes run (characters plus end symbols).
    pub symbols: u64,
    /// Clock ticks (SysTick on Cortex-M, `minstret` on RISC-V) spent generating.
    pub ticks: u64,
    /// Clock ticks of the calibration loop.
    pub calibration_ticks: u64,
    /// Instructions of the calibration loop.
    pub calibration_instructions: u64,
    /// Deepest stack use, bytes.
    pub stack_used: u64,
    /// Stack space, bytes.
    pub stack_size: u64,
    /// Everything QEMU printed, stdout then stderr, for failure messages.
    pub output: String,
}

impl FirmwareRun {
    /// Instructions spent generating, from the clock ticks and the calibration; meaningful
    /// only for runs under `-icount shift=0`.
    pub fn instructions(&self) -> Option<u64> {
        (self.calibration_ticks > 0)
            .then(|| self.ticks * self.calibration_instructions / self.calibration_ticks)
    }
}

/// Boots `elf` in QEMU through `sampler/firmware/qemu-run.sh` (the runner of `cargo run`) with
/// the firmware arguments `args` and extra QEMU options `qemu_extra`, killing it after
/// `timeout`.
pub fn run_firmware(
    elf: &Path,
    args: &[String],
    qemu_extra: &str,
    timeout: Duration,
) -> Result<FirmwareRun, String> {
    let runner = repo_root()
        .join("sampler")
        .join("firmware")
        .join("qemu-run.sh");
    let mut child = Command::new(&runner)
        .arg(elf)
        .args(args)
        .env("QEMU_EXTRA", qemu_extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", runner.display()))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} did not exit within {timeout:?}", elf.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let mut run = parse_firmware_output(&stdout);
    run.success = status.success();
    run.output = format!("{stdout}{stderr}");
    Ok(run)
}

/// Reads the firmware's output format (see `sampler/firmware/README.md`).
pub fn parse_firmware_output(stdout: &str) -> FirmwareRun {
    let mut run = FirmwareRun::default();
    for line in stdout.lines() {
        if let Some(error) = line.strip_prefix("error: ") {
            run.errors.push(error.to_owned());
        } else if let Some(stat) = line.strip_prefix("# ") {
            let words: Vec<&str> = stat.split(' ').collect();
            let number = |i: usize| words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0);
            match words.first().copied() {
                Some("model") => {
                    run.model_address = words
                        .get(4)
                        .and_then(|w| w.strip_prefix("0x"))
                        .and_then(|h| u64::from_str_radix(h, 16).ok())
                        .unwrap_or(0);
                }
                Some("symbols") => run.symbols = number(1),
                Some("ticks") => run.ticks = number(1),
                Some("calibration") => {
                    run.calibration_ticks = number(1);
                    run.calibration_instructions = number(4);
                }
                Some("stack") => {
                    run.stack_used = number(2);
                    run.stack_size = number(4);
                }
                _ => {}
            }
        } else {
            run.names.push(line.to_owned());
        }
    }
    run
}

// --- WASM helpers (wasm_node.rs, wasm_browser.rs) ---

/// The WASM module's crate.
pub fn wasm_dir() -> PathBuf {
    repo_root().join("sampler").join("wasm")
}

/// Where the Node and Chromium drivers and their npm packages live (`npm ci` there).
pub fn web_dir() -> PathBuf {
    repo_root().join("tests").join("web")
}

/// The two builds of the WASM module the npm package ships: the same code, with and without
/// WASM's SIMD128 instructions (engines without SIMD cannot load that one; `Namegen.load` picks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WasmBuild {
    /// Plain WASM: the portable kernels, for every engine (`namegen.wasm` in the package).
    Scalar,
    /// Built with the `simd128` target feature: the sampler's SIMD128 kernels
    /// (`namegen-simd.wasm` in the package).
    Simd128,
}

impl WasmBuild {
    /// Both builds, scalar first.
    pub const ALL: [Self; 2] = [Self::Scalar, Self::Simd128];

    /// Its name in reports and test messages.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Simd128 => "simd128",
        }
    }
}

/// Builds the WASM module (release: the profile the page ships) in `build`, once per test
/// process and build, and returns its path. The SIMD128 build has a target directory of its own
/// under [`device_target_dir`] (`simd128/`), so that the two builds do not rebuild each other.
pub fn build_wasm(build: WasmBuild) -> Result<PathBuf, String> {
    static BUILT: Mutex<Vec<(WasmBuild, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, result)) = built.iter().find(|(b, _)| *b == build) {
        return result.clone();
    }
    let target_dir = match build {
        WasmBuild::Scalar => device_target_dir(),
        WasmBuild::Simd128 => device_target_dir().join("simd128"),
    };
    let flags: &[(&str, &std::ffi::OsStr)] = match build {
        WasmBuild::Scalar => &[],
        WasmBuild::Simd128 => &[("RUSTFLAGS", "-C target-feature=+simd128".as_ref())],
    };
    let result = cargo(
        &wasm_dir(),
        &["build", "--release", "--target", "wasm32-unknown-unknown"],
        &[&[("CARGO_TARGET_DIR", target_dir.as_os_str())], flags].concat(),
    )
    .map(|()| {
        target_dir
            .join("wasm32-unknown-unknown")
            .join("release")
            .join("namegen_wasm.wasm")
    });
    built.push((build, result.clone()));
    result
}

/// A module's size, plain and through `gzip -9` (as a web server would send it), in bytes.
pub fn gzipped_size(module: &Path) -> Result<(u64, u64), String> {
    let plain = std::fs::metadata(module)
        .map_err(|e| format!("{}: {e}", module.display()))?
        .len();
    let output = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(module)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !output.status.success() {
        return Err(format!("gzip failed on {}", module.display()));
    }
    Ok((plain, output.stdout.len() as u64))
}

/// Runs `node` in [`web_dir`] with `args`; `Ok` is its stdout, `Err` says what went wrong.
pub fn node(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let output = Command::new("node")
        .current_dir(web_dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node (install Node.js 20 or later): {e}"))?;
    if output.status.success() {
        String::from_utf8(output.stdout).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "node {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A scratch directory for one test under the device target directory, emptied first.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = device_target_dir().join("scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}
