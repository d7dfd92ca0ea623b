//! The page in Debian's headless Chromium (driven by playwright-core, `tests/web/browser.mjs`),
//! served from localhost: it loads the module's SIMD128 build (in the package's worker), shows
//! the host's names and scores for the shipped model and for a q8 model picked from disk, and a
//! corrupted file gets the loader's message in the page while the model in use stays; a typed
//! name gets the host's score; a long generation, cancelled, lists the host's names up to where
//! it stopped. Screenshots go to `target/devices/screenshots/`.
//!
//! The npm package (`sampler/wasm/pkg`, `npm pack`ed) in a page of its own
//! (`tests/web/package-page.mjs`): the host's names on the page's thread and in its worker,
//! the page answering clicks while the worker generates, and a cancel stopping the worker; its
//! types checked by `tsc` on a consumer, and the package imported under Node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use namegen_sampler::{Forward, ModelView, score};
use namegen_tests::{
    HostName, HostSettings, assert_same_name, device_target_dir, host_names, host_names_from,
    js_name, model_path, node, scratch_dir, thousands, wasm_dir, web_dir,
};
use serde_json::{Value, json};

/// What the page's settings fields are filled with, by element id.
const FIELDS: [(&str, &str); 7] = [
    ("count", "12"),
    ("seed", "2026"),
    ("temperature", "0.8"),
    ("top-k", "10"),
    ("top-p", "0.95"),
    ("prefix", "ma"),
    ("max-len", "7"),
];

/// The host's settings for [`FIELDS`]. The page turns text into a JS number (f64) and the
/// module takes it as f32, the nearest to that f64: the same conversion here.
fn host_settings() -> HostSettings {
    let field = |id: &str| {
        FIELDS
            .iter()
            .find(|(key, _)| *key == id)
            .map(|(_, value)| *value)
            .expect("a field")
    };
    let float = |id| field(id).parse::<f64>().expect("a number") as f32;
    let whole = |id| field(id).parse::<usize>().expect("a whole number");
    HostSettings {
        count: whole("count"),
        seed: field("seed").parse().expect("a seed"),
        temperature: float("temperature"),
        top_k: whole("top-k"),
        top_p: float("top-p"),
        prefix: field("prefix").to_owned(),
        max_len: whole("max-len"),
        ..HostSettings::default()
    }
}

/// The names as the page listed them (`data-*` attributes and the visible text).
fn page_names(list: &Value) -> Vec<(HostName, String)> {
    list.as_array()
        .expect("a list of names")
        .iter()
        .map(|item| {
            (
                js_name(item),
                item["shown"].as_str().expect("text").to_owned(),
            )
        })
        .collect()
}

fn assert_same_names(page: &Value, host: &[HostName], what: &str) {
    let page = page_names(page);
    assert_eq!(page.len(), host.len(), "{what}: number of names");
    for ((shown, text), expected) in page.iter().zip(host) {
        assert_same_name(shown, expected, what);
        let mark = if expected.cut { "\u{2026}" } else { "" };
        let visible = format!("{}{mark}{:.2}", expected.text, expected.log_likelihood);
        assert_eq!(text, &visible, "{what}: what the page shows");
    }
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}

/// Taken by the tests that keep a core busy for seconds (Chromium, tsc), so that they run one at
/// a time: the package's page must answer clicks while its worker fills a core, and a second
/// browser on the two cores of a CI machine would only blur what that shows.
fn busy_cores() -> MutexGuard<'static, ()> {
    static BUSY: Mutex<()> = Mutex::new(());
    BUSY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fails with a hint when `npm ci` has not run in tests/web.
fn assert_npm_packages() {
    for package in ["playwright-core", "typescript"] {
        assert!(
            web_dir().join("node_modules").join(package).is_dir(),
            "{package} is not installed: run `npm ci` in tests/web"
        );
    }
}

#[test]
fn page_generates_the_host_names_and_reports_a_bad_file() {
    assert_npm_packages();
    // The page as the README puts it together: `site.sh` builds the module and copies files.
    let scratch = scratch_dir("wasm-browser");
    let site = scratch.join("www");
    let status = Command::new(wasm_dir().join("site.sh"))
        .arg(&site)
        .arg(model_path("f32"))
        .env("CARGO_TARGET_DIR", device_target_dir())
        .status()
        .expect("run sampler/wasm/site.sh");
    assert!(status.success(), "sampler/wasm/site.sh failed");

    // A download cut short: the header is whole, the tensors run past the end.
    let q8_bytes = std::fs::read(model_path("q8")).expect("read the model");
    let corrupt = &q8_bytes[..5000];
    let corrupt_path = scratch.join("corrupt.safetensors");
    std::fs::write(&corrupt_path, corrupt).expect("write the corrupted model");
    let load_error = ModelView::parse(corrupt).expect_err("the host refuses it too");

    let screenshots = device_target_dir().join("screenshots");
    std::fs::create_dir_all(&screenshots).expect("create the screenshot directory");
    let config = json!({
        "root": site,
        "screenshots": screenshots,
        "pick": model_path("q8"),
        "corrupt": corrupt_path,
        "score": "emma",
        "longCount": LONG_COUNT,
        "settings": FIELDS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    let config_path = scratch.join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("write the config");
    let busy = busy_cores();
    let stdout =
        node(&["browser.mjs".as_ref(), config_path.as_os_str()]).unwrap_or_else(|e| panic!("{e}"));
    drop(busy);
    let page: Value = serde_json::from_str(&stdout).expect("the driver prints JSON");

    let settings = host_settings();
    assert_eq!(
        settings.temperature, 0.8f32,
        "the page's f64-then-f32 is the nearest f32"
    );
    let f32_bytes = std::fs::read(model_path("f32")).expect("read the model");
    let f32_view = ModelView::parse(&f32_bytes).expect("the host loads the model");
    assert_eq!(
        page["shippedStatus"],
        format!(
            "shipped model: f32 model: 27 symbols, context of 3, {} parameters",
            f32_view.config().folded_parameters()
        )
    );
    let shipped = host_names(&f32_bytes, &settings);
    assert!(shipped.iter().any(|n| n.cut) && shipped.iter().any(|n| !n.cut));
    assert_same_names(&page["shipped"], &shipped, "shipped f32 model");
    assert_eq!(page["errorAfterShipped"], Value::Null);

    assert!(
        page["pickedStatus"]
            .as_str()
            .is_some_and(|s| s.starts_with("model-q8.safetensors: q8 model: 27 symbols")),
        "{}",
        page["pickedStatus"]
    );
    let picked = host_names(&q8_bytes, &settings);
    assert_same_names(&page["picked"], &picked, "q8 model picked from disk");

    assert_eq!(
        page["corruptError"],
        format!("Could not load corrupt.safetensors: not a usable namegen model: {load_error}")
    );
    assert!(
        page["corruptStatus"]
            .as_str()
            .is_some_and(|s| s.starts_with("model-q8.safetensors") && s.ends_with("(still in use)")),
        "{}",
        page["corruptStatus"]
    );
    assert_same_names(&page["afterCorrupt"], &picked, "after the refused file");

    let q8_view = ModelView::parse(&q8_bytes).expect("the host loads the model");
    let emma = score(&q8_view, &mut Forward::<100>::new(), "emma").expect("host score");
    let perplexity = (-emma.log_likelihood / emma.symbols as f64).exp();
    assert_eq!(
        page["score"],
        format!(
            "log-likelihood {:.2} (per-symbol perplexity {perplexity:.2})",
            emma.log_likelihood
        )
    );

    // Cancelled after whole blocks, each listed as it came: the host's names for as many.
    let cancelled = page["cancelled"]
        .as_array()
        .expect("the cancelled names")
        .len();
    assert!(
        cancelled > 0 && cancelled < LONG_COUNT && cancelled.is_multiple_of(BLOCK),
        "{cancelled} names listed"
    );
    assert_eq!(
        page["cancelText"],
        format!("Cancelled after {} names", thousands(cancelled as u64))
    );
    assert_eq!(
        page["cancelHidden"], true,
        "the Cancel button after the cancel"
    );
    let made = HostSettings {
        count: cancelled,
        ..settings.clone()
    };
    assert_names(
        &page["cancelled"],
        &host_names(&q8_bytes, &made),
        "the page, cancelled",
    );

    assert_eq!(page["pageErrors"], json!([]), "uncaught errors in the page");
    assert_eq!(page["consoleErrors"], json!([]), "errors on the console");
    let url = page["url"].as_str().expect("the page's address");
    let requests = page["requests"].as_array().expect("the page's requests");
    assert!(!requests.is_empty());
    for request in requests {
        assert!(
            request.as_str().is_some_and(|r| r.starts_with(url)),
            "the page fetched {request} from outside its own server"
        );
    }
    // Chromium runs WebAssembly SIMD, so the page's worker loads the SIMD128 build, and only
    // that one.
    let modules: Vec<&str> = requests
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| r.ends_with(".wasm"))
        .collect();
    assert_eq!(
        modules,
        [format!("{url}namegen/namegen-simd.wasm")],
        "{requests:?}"
    );
    for shot in ["page-names.png", "page-error.png", "page-cancelled.png"] {
        assert!(is_png(&screenshots.join(shot)), "screenshot {shot}");
    }
}

/// The worker's block: the module's `MAX_NAMES` (sampler/wasm/src/lib.rs). Block `j` of a
/// worker's generation is names `j * BLOCK..` of the seed, so the names are the host's list.
const BLOCK: usize = 1000;

/// What `npm pack` must put in the package, sorted: the JS modules, their types, the module's
/// two builds.
const PACKAGE_FILES: [&str; 8] = [
    "namegen-simd.wasm",
    "namegen.d.ts",
    "namegen.js",
    "namegen.wasm",
    "package.json",
    "worker-thread.js",
    "worker.d.ts",
    "worker.js",
];

/// Names the site page is asked for in the generation it cancels (the most its count field
/// takes); it cancels as soon as the first block is listed.
const LONG_COUNT: usize = 10_000;

/// Names the package's page is asked for in the generation it clicks through and then
/// cancels: the most the package takes (`MAX_COUNT` in its worker.js), ten times the 10,000
/// the page must stay responsive through, so that the SIMD128 module, which makes 10,000 in a
/// second or two, is still generating when the clicks are done and the cancel comes.
const PACKAGE_LONG_COUNT: usize = 100_000;

/// Clicks on the test page during the long generation that must be answered.
const CLICKS: usize = 5;

/// The longest input delay the issue allows while the worker generates. A page whose thread
/// ran the generation would answer only after a whole block of 1,000 names.
const CLICK_BUDGET_MS: f64 = 100.0;

/// Asserts that the names a driver reported (`{name, logLikelihood, cut}`) are `expected`, bit
/// for bit.
fn assert_names(got: &Value, expected: &[HostName], what: &str) {
    let got = got
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list"));
    assert_eq!(got.len(), expected.len(), "{what}: number of names");
    for (got, expected) in got.iter().zip(expected) {
        assert_same_name(&js_name(got), expected, what);
    }
}

/// Runs `command`; panics with its output unless it succeeds. Returns its stdout.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A directory that uses the package as another project would, made once per test process:
/// `package.sh` assembles the package, `npm pack` packs it, and the tarball is unpacked into
/// `node_modules/namegen-wasm`, beside the files of `tests/web/package-page/` and the shipped
/// f32 model as `model.safetensors`.
fn consumer() -> &'static Path {
    static CONSUMER: OnceLock<PathBuf> = OnceLock::new();
    CONSUMER.get_or_init(|| {
        assert_npm_packages();
        let scratch = scratch_dir("wasm-package");
        let staged = scratch.join("staged");
        run(Command::new(wasm_dir().join("package.sh"))
            .arg(&staged)
            .env("CARGO_TARGET_DIR", device_target_dir()));
        let packed = run(Command::new("npm")
            .current_dir(&scratch)
            .args(["pack", "--json", "--pack-destination"])
            .arg(&scratch)
            .arg(&staged));
        let packed: Value = serde_json::from_str(&packed).expect("npm pack --json prints JSON");
        let mut files: Vec<&str> = packed[0]["files"]
            .as_array()
            .expect("the packed files")
            .iter()
            .map(|f| f["path"].as_str().expect("a path"))
            .collect();
        files.sort_unstable();
        assert_eq!(files, PACKAGE_FILES, "what npm pack put in the package");
        let tarball = scratch.join(packed[0]["filename"].as_str().expect("the tarball"));
        println!(
            "{}: {} bytes",
            tarball.display(),
            std::fs::metadata(&tarball).expect("the tarball").len()
        );

        let root = scratch.join("consumer");
        let package = root.join("node_modules").join("namegen-wasm");
        std::fs::create_dir_all(&package).expect("create node_modules/namegen-wasm");
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&package)
            .arg("--strip-components=1"));
        let page = web_dir().join("package-page");
        for entry in std::fs::read_dir(&page).expect("tests/web/package-page") {
            let path = entry.expect("a file").path();
            std::fs::copy(&path, root.join(path.file_name().expect("a name"))).expect("copy");
        }
        std::fs::copy(model_path("f32"), root.join("model.safetensors")).expect("copy the model");
        root
    })
}

#[test]
fn packed_package_makes_the_host_names_in_another_page_and_cancels_in_its_worker() {
    let root = consumer();
    let small = host_settings();
    // Two blocks of seed 2^64 - 1: names 0..1000, then 1000..1100.
    let blocks = HostSettings {
        count: BLOCK + 100,
        seed: u64::MAX,
        ..HostSettings::default()
    };
    let long = HostSettings {
        count: PACKAGE_LONG_COUNT,
        seed: 7,
        ..HostSettings::default()
    };
    // Names from an index the caller gives, deep into the list.
    let (later, later_first) = (
        HostSettings {
            count: 3,
            ..small.clone()
        },
        123_456_789_999u64,
    );
    let mut later_js = later.js();
    later_js["first"] = json!(later_first.to_string());
    let config = json!({
        "root": root,
        "small": small.js(),
        "blocks": blocks.js(),
        "later": later_js,
        "long": long.js(),
        "clicks": CLICKS,
        "clickMs": 50,
    });
    let config_path = root.join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("write the config");
    let busy = busy_cores();
    let stdout = node(&["package-page.mjs".as_ref(), config_path.as_os_str()])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(busy);
    let page: Value = serde_json::from_str(&stdout).expect("the driver prints JSON");

    let model = std::fs::read(model_path("f32")).expect("read the model");
    let expected = host_names(&model, &small);
    assert_names(&page["mainThread"], &expected, "the page's thread");
    assert_names(&page["worker"]["names"], &expected, "the worker");
    assert_eq!(
        page["worker"]["progress"],
        json!([{ "block": 12, "done": 12, "total": 12 }])
    );
    assert_names(
        &page["blocks"]["names"],
        &host_names(&model, &blocks),
        "the worker, two blocks",
    );
    assert_names(
        &page["later"]["names"],
        &host_names_from(&model, &later, later_first),
        "the worker, from a later index",
    );
    assert_eq!(
        page["blocks"]["progress"],
        json!([
            { "block": 1000, "done": 1000, "total": 1100 },
            { "block": 100, "done": 1100, "total": 1100 },
        ])
    );

    // Cancelled: the worker stopped (had it not, the promise would resolve with every name).
    let cancelled = &page["long"];
    assert_eq!(
        cancelled["outcome"],
        json!({ "rejected": "AbortError", "isDomException": true })
    );
    let back = cancelled["names"].as_array().expect("names").len();
    assert!(
        back > 0 && back < long.count && back.is_multiple_of(BLOCK),
        "{back} names came back"
    );
    let made = HostSettings {
        count: back,
        ..long.clone()
    };
    assert_names(
        &cancelled["names"],
        &host_names(&model, &made),
        "the cancelled generation",
    );
    assert_names(
        &page["afterCancel"]["names"],
        &expected,
        "the worker after the cancel",
    );

    // Every click was answered, at least CLICKS of them while the worker generated.
    let clicks = cancelled["clicks"].as_array().expect("clicks");
    assert_eq!(Some(clicks.len() as u64), page["clicksSent"].as_u64());
    let during: Vec<f64> = clicks
        .iter()
        .filter(|c| c["running"] == true)
        .map(|c| c["latency"].as_f64().expect("a latency"))
        .collect();
    assert!(
        during.len() >= CLICKS,
        "{} clicks during the run",
        during.len()
    );
    let slowest = during.iter().copied().fold(0.0, f64::max);
    let ms = |v: &Value| v.as_f64().expect("a duration");
    println!(
        "{} clicks while the worker generated, answered within {slowest:.1} ms; {back} of {} \
         names before the cancel, which took {:.0} ms; {} names in the worker in {:.0} ms",
        during.len(),
        long.count,
        ms(&cancelled["ms"]),
        blocks.count,
        ms(&page["blocks"]["ms"]),
    );
    assert!(
        slowest < CLICK_BUDGET_MS,
        "a click waited {slowest} ms: {during:?}"
    );

    assert_eq!(page["pageErrors"], json!([]), "uncaught errors in the page");
    assert_eq!(page["consoleErrors"], json!([]), "errors on the console");
    let url = page["url"].as_str().expect("the page's address");
    for request in page["requests"].as_array().expect("the page's requests") {
        assert!(
            request.as_str().is_some_and(|r| r.starts_with(url)),
            "the page fetched {request} from outside its own server"
        );
    }
}

#[test]
fn packed_package_types_check_in_a_typescript_consumer() {
    let root = consumer();
    let tsc = web_dir().join("node_modules/typescript/bin/tsc");
    let _busy = busy_cores();
    node(&[
        tsc.as_os_str(),
        "-p".as_ref(),
        root.join("tsconfig.json").as_os_str(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn packed_package_makes_the_host_names_under_node() {
    let root = consumer();
    let settings = host_settings();
    let stdout = node(&[
        root.join("node-check.mjs").as_os_str(),
        model_path("i8").as_os_str(),
        settings.js().to_string().as_ref(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Value = serde_json::from_str(&stdout).expect("the check prints JSON");
    let model = std::fs::read(model_path("i8")).expect("read the model");
    assert_names(&names, &host_names(&model, &settings), "under Node");
}
