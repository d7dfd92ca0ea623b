//! The WASM module under Node, through the package's JS wrapper (`sampler/wasm/pkg/namegen.js`),
//! in both builds (scalar and SIMD128): the same names, scores and cut flags as the host's
//! sampler, bit for bit, for every dtype and from any name index; clear messages for bad input;
//! and the size budget.

use std::path::Path;

use namegen_sampler::{DefaultSampler, Forward, ModelView, Settings, score};
use namegen_tests::{
    DTYPES, HostName, HostSettings, WasmBuild, assert_same_name, build_wasm, gzipped_size,
    host_names, host_names_from, js_float, js_name, model_path, node, scratch_dir,
};
use serde_json::{Value, json};

/// The budget the issue sets for each build of the module, gzipped at level 9, without the
/// model.
const GZIP_BUDGET: u64 = 32 * 1024;

/// The dtypes the module takes: those of the firmware tests and q8, which the module runs too.
fn module_dtypes() -> Vec<&'static str> {
    let mut dtypes = DTYPES.to_vec();
    if !dtypes.contains(&"q8") {
        dtypes.push("q8");
    }
    dtypes
}

/// Settings that between them exercise every knob, a 64-bit seed and cut names.
fn settings_cases() -> Vec<HostSettings> {
    vec![
        HostSettings {
            count: 20,
            ..HostSettings::default()
        },
        HostSettings {
            count: 10,
            seed: 7,
            temperature: 0.8,
            top_k: 10,
            prefix: "ma".to_owned(),
            ..HostSettings::default()
        },
        HostSettings {
            count: 20,
            seed: 123_456_789_012_345,
            top_p: 0.9,
            min_len: 4,
            max_len: 6,
            ..HostSettings::default()
        },
        HostSettings {
            count: 3,
            temperature: 0.0,
            prefix: "e".to_owned(),
            ..HostSettings::default()
        },
        HostSettings {
            count: 5,
            seed: u64::MAX,
            temperature: 1.5,
            ..HostSettings::default()
        },
    ]
}

/// Runs `jobs` through `tests/web/node-run.mjs` on the module's `build`; one result per job.
fn run_jobs(build: WasmBuild, name: &str, jobs: &Value) -> Vec<Value> {
    let wasm = build_wasm(build).expect("the WASM module builds");
    // A directory of its own: the caller's may hold the files the jobs name.
    let jobs_path = scratch_dir(&format!("{name}-{}-jobs", build.label())).join("jobs.json");
    std::fs::write(&jobs_path, jobs.to_string()).expect("write the jobs");
    let stdout = node(&[
        "node-run.mjs".as_ref(),
        wasm.as_os_str(),
        jobs_path.as_os_str(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let results: Vec<Value> = serde_json::from_str(&stdout).expect("the driver prints JSON");
    assert_eq!(results.len(), jobs.as_array().map_or(0, Vec::len));
    results
}

fn names_of(result: &Value) -> Vec<HostName> {
    assert_eq!(result["ok"], true, "the module refused: {result}");
    result["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(js_name)
        .collect()
}

fn error_of(result: &Value) -> &str {
    assert_eq!(result["ok"], false, "the module accepted: {result}");
    result["error"].as_str().expect("an error message")
}

#[test]
fn module_is_small_and_self_contained() {
    for build in WasmBuild::ALL {
        let wasm = build_wasm(build).expect("the WASM module builds");
        let (raw, gzipped) = gzipped_size(&wasm).expect("gzip the module");
        let label = build.label();
        println!("namegen_wasm.wasm, {label}: {raw} bytes, {gzipped} bytes gzipped (-9)");
        assert!(
            gzipped <= GZIP_BUDGET,
            "{label}: {gzipped} bytes gzipped, over the {GZIP_BUDGET}-byte budget"
        );
        // No imports: the page and Node instantiate it with an empty import object.
        let imports = node(&[
            "--input-type=module".as_ref(),
            "-e".as_ref(),
            "import{readFileSync}from'node:fs';\
             const m=new WebAssembly.Module(readFileSync(process.argv[1]));\
             process.stdout.write(JSON.stringify(WebAssembly.Module.imports(m)))"
                .as_ref(),
            wasm.as_os_str(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(imports, "[]", "{label}");
    }
}

#[test]
fn names_match_the_host_for_every_dtype() {
    let cases = settings_cases();
    let dtypes = module_dtypes();
    let mut jobs = Vec::new();
    for dtype in &dtypes {
        for s in &cases {
            jobs.push(json!({ "model": model_path(dtype), "generate": s.js() }));
        }
    }
    let jobs = Value::Array(jobs);
    for build in WasmBuild::ALL {
        let results = run_jobs(build, "wasm-node-names", &jobs);
        let mut results = results.iter();
        let mut cut_seen = false;
        for dtype in &dtypes {
            let bytes = std::fs::read(model_path(dtype)).expect("read the model");
            for s in &cases {
                let result = results.next().expect("one result per job");
                assert!(
                    result["description"]
                        .as_str()
                        .is_some_and(|d| d.starts_with(&format!("{dtype} model: 27 symbols"))),
                    "{result}"
                );
                let wasm = names_of(result);
                let host = host_names(&bytes, s);
                assert_eq!(wasm.len(), s.count);
                for (w, h) in wasm.iter().zip(&host) {
                    assert_same_name(w, h, &format!("{} {dtype} {s:?}", build.label()));
                    assert!(h.text.starts_with(&s.prefix));
                    cut_seen |= h.cut;
                }
            }
        }
        assert!(cut_seen, "the cases are meant to include cut names");
    }
}

#[test]
fn names_from_any_index_are_the_hosts_names_there() {
    // Past the first call's 1,000 names, deep into the list, and the very last names.
    let starts: [(u64, usize); 3] = [(1000, 7), (123_456_789_012, 5), (u64::MAX - 3, 4)];
    let settings = HostSettings {
        seed: 42,
        ..HostSettings::default()
    };
    let jobs: Vec<Value> = ["f32", "q8"]
        .iter()
        .flat_map(|dtype| {
            starts.map(|(first, count)| {
                let mut generate = HostSettings {
                    count,
                    ..settings.clone()
                }
                .js();
                generate["first"] = json!(first.to_string());
                json!({ "model": model_path(dtype), "generate": generate })
            })
        })
        .collect();
    let jobs = Value::Array(jobs);
    for build in WasmBuild::ALL {
        let results = run_jobs(build, "wasm-node-first", &jobs);
        let mut results = results.iter();
        for dtype in ["f32", "q8"] {
            let bytes = std::fs::read(model_path(dtype)).expect("read the model");
            for (first, count) in starts {
                let result = results.next().expect("one result per job");
                let s = HostSettings {
                    count,
                    ..settings.clone()
                };
                let what = format!("{} {dtype} names {first}..", build.label());
                let wasm = names_of(result);
                assert_eq!(wasm.len(), count, "{what}");
                for (w, h) in wasm.iter().zip(&host_names_from(&bytes, &s, first)) {
                    assert_same_name(w, h, &what);
                }
            }
        }
    }
}

#[test]
fn scores_match_the_host() {
    let names = ["emma", "olivia", "xqzzv", "a"];
    let dtypes = module_dtypes();
    let jobs: Vec<Value> = dtypes
        .iter()
        .flat_map(|dtype| names.map(|n| json!({ "model": model_path(dtype), "score": n })))
        .collect();
    let jobs = Value::Array(jobs);
    for build in WasmBuild::ALL {
        let results = run_jobs(build, "wasm-node-scores", &jobs);
        let mut results = results.iter();
        for dtype in &dtypes {
            let bytes = std::fs::read(model_path(dtype)).expect("read the model");
            let view = ModelView::parse(&bytes).expect("the host loads the model");
            for name in names {
                let result = results.next().expect("one result per job");
                assert_eq!(result["ok"], true, "{result}");
                let host = score(&view, &mut Forward::<100>::new(), name).expect("host score");
                let wasm = js_float(&result["score"]["logLikelihood"]);
                let what = format!("{} {dtype} {name}", build.label());
                assert_eq!(wasm.to_bits(), host.log_likelihood.to_bits(), "{what}");
                assert_eq!(result["score"]["symbols"], host.symbols, "{what}");
            }
        }
    }
}

#[test]
fn bad_input_gives_the_loaders_and_samplers_messages() {
    let dir = scratch_dir("wasm-node-bad-input");
    let good = std::fs::read(model_path("i8")).expect("read the model");
    // Cut short: the header promises tensors past the end of the file.
    let truncated = &good[..good.len() / 2];
    let truncated_path = dir.join("truncated.safetensors");
    std::fs::write(&truncated_path, truncated).expect("write");
    // One header byte changed: `{` becomes `[`.
    let mut garbled = good.clone();
    garbled[8] = b'[';
    let garbled_path = dir.join("garbled.safetensors");
    std::fs::write(&garbled_path, &garbled).expect("write");
    let huge_path = dir.join("huge.safetensors");
    std::fs::write(&huge_path, vec![0u8; 300 * 1024]).expect("write");
    let unfolded = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/default.ckpt.safetensors");
    let unfolded_bytes = std::fs::read(&unfolded).expect("read the checkpoint");

    let i8_model = model_path("i8");
    let jobs = json!([
        { "model": truncated_path, "generate": { "count": 1 } },
        { "model": garbled_path, "generate": { "count": 1 } },
        { "model": unfolded, "generate": { "count": 1 } },
        { "model": huge_path, "generate": { "count": 1 } },
        { "model": i8_model, "generate": { "count": 1, "prefix": "Zo" } },
        { "model": i8_model, "generate": { "count": 1, "temperature": -1 } },
        { "model": i8_model, "generate": { "count": 1, "prefix": "abc", "maxLen": 2 } },
        { "model": i8_model, "generate": { "count": 0 } },
        { "model": i8_model, "generate": { "count": 1, "seed": "-3" } },
        { "model": i8_model, "score": "o'neil" },
        { "model": i8_model, "generate": { "count": 5, "first": (u64::MAX - 3).to_string() } },
        { "model": i8_model, "generate": { "count": 1, "first": "1.5" } },
    ]);
    // The messages come from code both builds share; the scalar build answers.
    let results = run_jobs(WasmBuild::Scalar, "wasm-node-bad-input", &jobs);

    let load = |bytes: &[u8]| {
        let error = ModelView::parse(bytes).expect_err("the host refuses it too");
        format!("not a usable namegen model: {error}")
    };
    assert_eq!(error_of(&results[0]), load(truncated));
    assert_eq!(error_of(&results[1]), load(&garbled));
    assert_eq!(error_of(&results[2]), load(&unfolded_bytes));
    assert_eq!(
        error_of(&results[3]),
        "the file is 307200 bytes; this page takes models up to 262144 bytes"
    );
    let view = ModelView::parse(&good).expect("the host loads the model");
    let refusal = |settings: Settings<'_>| {
        DefaultSampler::new(&view, settings)
            .map(|_| ())
            .expect_err("the host refuses it too")
            .to_string()
    };
    let with = |prefix, temperature, max_len| Settings {
        prefix,
        temperature,
        max_len,
        ..Settings::default()
    };
    assert_eq!(error_of(&results[4]), refusal(with("Zo", 1.0, 32)));
    assert_eq!(error_of(&results[5]), refusal(with("", -1.0, 32)));
    assert_eq!(error_of(&results[6]), refusal(with("abc", 1.0, 2)));
    assert_eq!(error_of(&results[7]), "the count must be from 1 to 1000");
    assert_eq!(
        error_of(&results[8]),
        "the seed must be a whole number from 0 to 18446744073709551615"
    );
    let score_error = score(&view, &mut Forward::<100>::new(), "o'neil").expect_err("unknown");
    assert_eq!(
        error_of(&results[9]),
        format!("cannot score \u{201c}o'neil\u{201d}: {score_error}")
    );
    assert_eq!(
        error_of(&results[10]),
        "names past index 18446744073709551615 do not exist"
    );
    assert_eq!(
        error_of(&results[11]),
        "the first name's index must be a whole number from 0 to 18446744073709551615"
    );
}
