//! The page in Debian's headless Chromium (driven by playwright-core, `tests/web/browser.mjs`),
//! served from localhost: it loads the module's SIMD128 build, shows the host's names and scores
//! for the shipped model and for a q8 model picked from disk, and a corrupted file gets the loader's message in the page while
//! the model in use stays; a typed name gets the host's score. Screenshots go to `target/devices/screenshots/`.

use std::path::Path;
use std::process::Command;

use namegen_sampler::{Forward, ModelView, score};
use namegen_tests::{
    HostName, HostSettings, assert_same_name, device_target_dir, host_names, js_name, model_path,
    node, scratch_dir, wasm_dir, web_dir,
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

#[test]
fn page_generates_the_host_names_and_reports_a_bad_file() {
    assert!(
        web_dir()
            .join("node_modules")
            .join("playwright-core")
            .is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/web"
    );
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
        "settings": FIELDS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    let config_path = scratch.join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("write the config");
    let stdout =
        node(&["browser.mjs".as_ref(), config_path.as_os_str()]).unwrap_or_else(|e| panic!("{e}"));
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
    // Chromium runs WebAssembly SIMD, so the page loads the SIMD128 build, and only that one.
    let modules: Vec<&str> = requests
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| r.ends_with(".wasm"))
        .collect();
    assert_eq!(modules, [format!("{url}namegen-simd.wasm")], "{requests:?}");
    for shot in ["page-names.png", "page-error.png"] {
        assert!(is_png(&screenshots.join(shot)), "screenshot {shot}");
    }
}
