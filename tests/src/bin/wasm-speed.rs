//! The WASM module's speed beside the native sampler's, measured in the same run: characters
//! (symbols drawn, the end of each name included) per second, one name at a time, with the
//! shipped f32 model at default settings. Native is the `Sampler` on this CPU's fastest kernels
//! (weights packed, as the sampling benchmark's "unbatched" case); WASM is each build of the
//! module (scalar and SIMD128) under Node through the page's own wrapper, one `generate` call
//! of 1,000 names per round (`tests/web/node-speed.mjs`). Rounds are interleaved (native, then
//! each module, same seed: the same names) after one warm-up round, and each figure is the
//! median of its rounds, so a machine busy with other work slows all of them alike.
//!
//! `cargo run --release -p namegen-tests --bin wasm-speed [-- --json] [--rounds N]` (needs
//! Node 20 or later; builds both modules). The figures command puts its JSON into
//! `docs/benchmarks.md` and the README.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use namegen_sampler::{ModelView, Sampler, Settings};
use namegen_tests::{WasmBuild, build_wasm, gzipped_size, model_path, thousands, web_dir};
use serde_json::{Value, json};

/// Names per round: the most one `generate` call makes.
const NAMES: usize = 1000;

/// Rounds measured when `--rounds` is not given.
const DEFAULT_ROUNDS: usize = 7;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut json, mut rounds) = (false, DEFAULT_ROUNDS);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--rounds" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => rounds = n,
                _ => return usage("--rounds takes a whole number from 1"),
            },
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    match measure(rounds) {
        Ok(report) if json => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", text(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-speed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("wasm-speed: {problem}\nusage: wasm-speed [--json] [--rounds N]");
    ExitCode::from(2)
}

/// Every round of every contender, as JSON (the `--json` output).
fn measure(rounds: usize) -> Result<Value, String> {
    let model_file = model_path("f32");
    let bytes = std::fs::read(&model_file).map_err(|e| format!("{}: {e}", model_file.display()))?;
    let mut model = ModelView::parse(&bytes).map_err(|e| e.to_string())?;
    model.pack_weights();
    let mut modules = Vec::new();
    for build in WasmBuild::ALL {
        let module = build_wasm(build)?;
        let (plain, gzipped) = gzipped_size(&module)?;
        eprintln!("{}: {plain} bytes, {gzipped} gzipped", build.label());
        modules.push((build, Node::start(&module, &model_file)?, plain, gzipped));
    }
    let mut native_runs = Vec::new();
    let mut wasm_runs = vec![Vec::new(); modules.len()];
    // Round 0 warms up (Node compiles the module's hot functions in tiers) and is not kept.
    for round in 0..=rounds {
        let seed = round as u64;
        let (symbols, native) = native_round(&model, seed);
        for ((_, node, ..), runs) in modules.iter_mut().zip(&mut wasm_runs) {
            let (wasm_symbols, rate) = node.round(seed)?;
            if wasm_symbols != symbols {
                return Err(format!(
                    "seed {seed}: the module drew {wasm_symbols} symbols, the host {symbols}"
                ));
            }
            if round > 0 {
                runs.push(rate);
            }
        }
        if round > 0 {
            native_runs.push(native);
        }
        eprintln!("round {round}: native {native:.0} characters/s");
    }
    let native = median(&native_runs);
    let wasm: Vec<Value> = modules
        .iter()
        .zip(&wasm_runs)
        .map(|((build, _, plain, gzipped), runs)| {
            json!({
                "build": build.label(),
                "bytes": plain,
                "gzipped": gzipped,
                "median": median(runs),
                "vs_native": median(runs) / native,
                "runs": runs,
            })
        })
        .collect();
    Ok(json!({
        "model": "data/model-f32.safetensors",
        "names_per_round": NAMES,
        "rounds": rounds,
        "node": Node::version(),
        "native": {
            "kernels": format!("{:?}", model.kernels()),
            "median": native,
            "runs": native_runs,
        },
        "wasm": wasm,
    }))
}

/// One round of the native sampler: the symbols drawn for [`NAMES`] names of `seed`, and
/// their rate.
fn native_round(model: &ModelView<'_>, seed: u64) -> (u64, f64) {
    let settings = Settings {
        seed,
        ..Settings::default()
    };
    let start = Instant::now();
    let sampler = Sampler::<100>::new(model, settings).expect("default settings are valid");
    let symbols: u64 = sampler
        .take(NAMES)
        .map(|name| (name.chars + usize::from(!name.cut)) as u64)
        .sum();
    (symbols, symbols as f64 / start.elapsed().as_secs_f64())
}

/// A Node process running `node-speed.mjs` on one module.
struct Node {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Node {
    fn start(module: &std::path::Path, model: &std::path::Path) -> Result<Self, String> {
        let mut child = Command::new("node")
            .current_dir(web_dir())
            .arg("node-speed.mjs")
            .args([module, model])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run node (install Node.js 20 or later): {e}"))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            child,
            input,
            output,
        })
    }

    /// The symbols one `generate` call of [`NAMES`] names of `seed` drew, and their rate.
    fn round(&mut self, seed: u64) -> Result<(u64, f64), String> {
        writeln!(self.input, "{NAMES} {seed}").map_err(|e| format!("node: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("node: {e}"))?;
        let answer: Value =
            serde_json::from_str(&line).map_err(|e| format!("node answered {line:?}: {e}"))?;
        let symbols = answer["symbols"].as_u64().ok_or("no symbols")?;
        let seconds = answer["seconds"].as_f64().ok_or("no seconds")?;
        Ok((symbols, symbols as f64 / seconds))
    }

    /// `node --version`, or "unknown".
    fn version() -> String {
        Command::new("node")
            .arg("--version")
            .output()
            .ok()
            .map_or("unknown".into(), |o| {
                String::from_utf8_lossy(&o.stdout).trim().to_owned()
            })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // `input` closes only after this runs, so Node is still waiting for a line: end it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median of `runs` (the mean of the middle two for an even count).
fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The report as text.
fn text(report: &Value) -> String {
    let rate = |v: &Value| thousands(v.as_f64().unwrap_or(0.0) as u64);
    let mut out = format!(
        "One name at a time, {}, default settings; {} names per round, {} rounds interleaved, \
         medians.\nnative ({} kernels): {} characters/s\n",
        report["model"].as_str().unwrap_or("?"),
        report["names_per_round"],
        report["rounds"],
        report["native"]["kernels"].as_str().unwrap_or("?"),
        rate(&report["native"]["median"]),
    );
    for wasm in report["wasm"].as_array().into_iter().flatten() {
        out += &format!(
            "WASM {} in Node {}: {} characters/s, {:.2} x native ({} bytes, {} gzipped)\n",
            wasm["build"].as_str().unwrap_or("?"),
            report["node"].as_str().unwrap_or("?"),
            rate(&wasm["median"]),
            wasm["vs_native"].as_f64().unwrap_or(f64::NAN),
            thousands(wasm["bytes"].as_u64().unwrap_or(0)),
            thousands(wasm["gzipped"].as_u64().unwrap_or(0)),
        );
    }
    out
}
