//! The `namegen` program end to end: a short training run with plots, bad input reported
//! with a message and a non-zero exit code, and Ctrl-C writing a checkpoint that resumes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use namegen_files::checkpoint::Checkpoint;

fn namegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namegen"))
        .args(args)
        .output()
        .expect("the namegen binary runs")
}

fn small_names_file(dir: &Path) -> String {
    let text = std::fs::read_to_string(common::names_path()).unwrap();
    let head: Vec<&str> = text.lines().take(2000).collect();
    let path = dir.join("names.txt");
    std::fs::write(&path, head.join("\n")).unwrap();
    path.display().to_string()
}

#[test]
fn train_writes_checkpoint_report_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_names_file(dir.path());
    let out = dir.path().join("m.ckpt.safetensors");
    let plots = dir.path().join("plots");
    let output = namegen(&[
        "train",
        "--data",
        &data,
        "--steps",
        "300",
        "--stats-every",
        "50",
        "--out",
        out.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("2000 names read, 0 blank lines skipped"),
        "{stderr}"
    );
    for part in ["train", "val", "test"] {
        assert!(stdout.lines().any(|l| l.starts_with(part)), "{stdout}");
    }
    let checkpoint = Checkpoint::load(&out).unwrap();
    assert_eq!(checkpoint.extra["train.step"], "300");
    assert!(checkpoint.extra.contains_key("provenance.val_loss"));
    for png in [
        "loss.png",
        "activations.png",
        "gradients.png",
        "update_ratio.png",
    ] {
        let bytes = std::fs::read(plots.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plots.join("diagnostics.json")).unwrap())
            .unwrap();
    assert_eq!(json["records"].as_array().unwrap().len(), 6);
    assert_eq!(json["records"][0]["tanh"].as_array().unwrap().len(), 5);
    assert_eq!(json["records"][0]["weights"].as_array().unwrap().len(), 6);

    // `namegen stats` redraws the plots from the JSON.
    let again = dir.path().join("again");
    let output = namegen(&[
        "stats",
        "--diagnostics",
        plots.join("diagnostics.json").to_str().unwrap(),
        "--plots",
        again.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert!(again.join("update_ratio.png").exists());
}

#[test]
fn bench_train_reports_steps_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_names_file(dir.path());
    let output = namegen(&[
        "bench", "train", "--data", &data, "--steps", "20", "--warmup", "5", "--runs", "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for row in [
        "flex     closed-form",
        "flex     autodiff",
        "ndarray  closed-form",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }

    let output = namegen(&[
        "bench",
        "train",
        "--data",
        &data,
        "--steps",
        "20",
        "--warmup",
        "5",
        "--runs",
        "3",
        "--backend",
        "flex",
        "--json",
    ]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{json:#}");
    let median = |row: &serde_json::Value| row["median"].as_f64().unwrap();
    for row in rows {
        let mut runs: Vec<f64> = row["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        assert_eq!(runs.len(), 3);
        runs.sort_by(f64::total_cmp);
        assert_eq!(median(row), runs[1]);
    }
    assert_eq!(rows[1]["grad"], "autodiff");
    assert_eq!(rows[1]["vs_autodiff"].as_f64(), Some(1.0));
    let ratio = rows[0]["vs_autodiff"].as_f64().unwrap();
    assert!((ratio - median(&rows[0]) / median(&rows[1])).abs() < 1e-12);
}

#[test]
fn a_run_stopped_and_resumed_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_names_file(dir.path());
    let straight = dir.path().join("straight.ckpt.safetensors");
    let parts = dir.path().join("parts.ckpt.safetensors");
    let common = ["train", "--data", &data, "--steps", "300", "--no-eval"];
    let run = |extra: &[&str]| {
        let output = namegen(&[&common[..], extra].concat());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    run(&["--out", straight.to_str().unwrap()]);
    let stopped = run(&["--stop-after", "150", "--out", parts.to_str().unwrap()]);
    assert!(stopped.contains("stopped at step 150"), "{stopped}");
    let resumed = run(&[
        "--resume",
        parts.to_str().unwrap(),
        "--out",
        parts.to_str().unwrap(),
    ]);
    assert!(resumed.contains("resuming"), "{resumed}");
    assert_eq!(
        std::fs::read(&straight).unwrap(),
        std::fs::read(&parts).unwrap()
    );
}

#[test]
fn bad_input_gives_a_message_and_a_failure_code() {
    let dir = tempfile::tempdir().unwrap();
    let dotted = dir.path().join("dotted.txt");
    std::fs::write(&dotted, "emma\nolivia\nann.marie\n").unwrap();
    let cases = [
        (
            "/nonexistent/names.txt".to_owned(),
            "/nonexistent/names.txt",
        ),
        (dotted.display().to_string(), "dotted.txt:3"),
    ];
    for (data, expected) in cases {
        let output = namegen(&["train", "--data", &data, "--steps", "1"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("error:") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = namegen(&["train", "--steps", "many"]);
    assert!(!output.status.success());
}

#[test]
fn ctrl_c_writes_a_checkpoint_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_names_file(dir.path());
    let out = dir.path().join("c.ckpt.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_namegen"))
        .args(["train", "--data", &data, "--steps", "100000000"])
        .args(["--checkpoint-every", "0", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it get into the training loop, then interrupt it like Ctrl-C does.
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "namegen did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let checkpoint = Checkpoint::load(&out).unwrap();
    let step: u64 = checkpoint.extra["train.step"].parse().unwrap();
    assert!(step > 0);
    // The same flags resume from it.
    let dataset = namegen_files::dataset::Dataset::load(Path::new(&data)).unwrap();
    let mut trainer = namegen_host::trainer::Trainer::resume(
        dataset,
        common::short_recipe(100_000_000),
        &checkpoint,
        "c.ckpt.safetensors",
        namegen_host::trainer::Backend::Flex,
        namegen_host::trainer::GradPath::ClosedForm,
    )
    .unwrap();
    assert_eq!(trainer.step, step);
    assert!(trainer.step(None).unwrap().is_finite());
}

/// Without `--seed`, `namegen sample` draws a fresh seed and prints it to stderr: two runs give
/// different names, and `--seed` with the printed number gives a run's names again.
#[test]
fn sample_without_a_seed_prints_a_fresh_one_that_repeats_the_names() {
    let model = common::names_path().with_file_name("model-f32.safetensors");
    let model = model.to_str().unwrap();
    let run = |extra: &[&str]| {
        let output = namegen(&[&["sample", "--model", model, "-n", "20"], extra].concat());
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        (output.stdout, stderr)
    };
    let printed_seed = |stderr: &str| -> String {
        let line = stderr.lines().find_map(|l| l.strip_prefix("seed: "));
        let seed = line.unwrap_or_else(|| panic!("no seed in {stderr:?}"));
        let seed = seed.split(' ').next().unwrap();
        seed.parse::<u64>().expect("the seed is a u64");
        seed.to_owned()
    };
    let (first, first_err) = run(&[]);
    let (second, second_err) = run(&[]);
    assert_eq!(String::from_utf8_lossy(&first).lines().count(), 20);
    assert_ne!(printed_seed(&first_err), printed_seed(&second_err));
    assert_ne!(first, second, "two fresh seeds, two lists of names");
    for (names, stderr) in [(first, first_err), (second, second_err)] {
        let (again, again_err) = run(&["--seed", &printed_seed(&stderr)]);
        assert_eq!(again, names, "the printed seed gives the same names");
        assert_eq!(again_err, "", "with --seed no seed is printed");
    }
}

/// Every step `namegen pipeline` prints is a command line that runs exactly that step: parsed
/// as the user would type it, it gives the flags the pipeline calls the command with. Checked
/// for the defaults and for non-default values with a space in a path.
#[test]
fn each_pipeline_step_prints_the_command_that_runs_it() {
    use clap::Parser;
    use namegen_host::cli::{Cli, Command as Sub};
    use namegen_host::commands::pipeline::{PipelineArgs, Step, steps};

    let defaults = Cli::parse_from(["namegen", "pipeline"]);
    let Sub::Pipeline(defaults) = defaults.command else {
        panic!("`namegen pipeline` parses as the pipeline");
    };
    let custom = PipelineArgs {
        data: "my names.txt".into(),
        out_dir: "runs/a b".into(),
        steps: 123,
        seed: 7,
        backend: namegen_host::trainer::Backend::Ndarray,
        count: 3,
    };
    for args in [defaults, custom] {
        let steps = steps(&args);
        assert_eq!(steps.len(), 2 + 2 * namegen_model::Dtype::EVERY.len() + 1);
        for step in steps {
            let argv = std::iter::once("namegen".to_string()).chain(step.argv());
            let parsed = Cli::try_parse_from(argv)
                .expect("the printed line parses")
                .command;
            match (parsed, &step) {
                (Sub::Train(a), Step::Train(b)) => assert_eq!(&a, b),
                (Sub::Split(a), Step::Split(b)) => assert_eq!(&a, b),
                (Sub::Export(a), Step::Export(b)) => assert_eq!(&a, b),
                (Sub::Verify(a), Step::Verify(b)) => assert_eq!(&a, b),
                (Sub::Sample(a), Step::Sample(b)) => assert_eq!(&a, b),
                (parsed, step) => panic!("{step:?} printed as {parsed:?}"),
            }
        }
    }
}
