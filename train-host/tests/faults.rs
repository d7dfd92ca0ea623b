//! Fault injection: the real `namegen` binary against what a careless or hostile user and a
//! failing machine do. Each case asserts the exit status, the message, and that no input and
//! no earlier output was changed or lost:
//! - an output that is the same file as an input (every command), or written twice;
//! - stdout closed by its reader (every command that prints);
//! - SIGINT, SIGTERM and SIGHUP in training, evaluation, export, verify and the pipeline;
//! - missing, read-only and full output locations (tmpfs mounts: the suite runs as root);
//! - symbolic links at output paths, the umask and the mode of a replaced file;
//! - huge and negative values, endless and oversized inputs, weights that overflow f32;
//! - temporaries left by a killed run.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use namegen_files::checkpoint::Checkpoint;

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGNALS: [(i32, &str); 3] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")];

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_namegen"));
    command.args(args).stdin(Stdio::null());
    command
}

/// Serialises process creation in this test binary. A child that another test's thread forks
/// holds copies of this thread's pipes until it execs, so a pipe whose reader was just dropped
/// could still have one for a moment, and a write to it would succeed: every spawn takes this
/// lock, and `with_stdout_closed` holds it from making its pipe to starting its program.
static SPAWNING: Mutex<()> = Mutex::new(());

fn spawning() -> MutexGuard<'static, ()> {
    SPAWNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `command` (never while another thread of this binary starts one).
fn spawn(command: &mut Command) -> Child {
    let _spawning = spawning();
    command.spawn().expect("the program starts")
}

/// Runs `command` to its end with stdout and stderr captured, like `Command::output`.
fn output(command: &mut Command) -> Output {
    spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()))
        .wait_with_output()
        .unwrap()
}

fn namegen(args: &[&str]) -> Output {
    output(&mut command(args))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails unless the run exited with `code` and said `message` on stderr, without a panic.
fn assert_fails(output: &Output, code: i32, message: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The bytes and permission bits of each file, to compare before and after a run.
fn snapshot(paths: &[&Path]) -> Vec<Option<(Vec<u8>, u32)>> {
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).ok()?;
            let mode = std::fs::metadata(p).ok()?.permissions().mode();
            Some((bytes, mode))
        })
        .collect()
}

/// The temporaries of `namegen` in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".namegen-tmp"))
        .collect()
}

/// A working directory with a names file of 2,000 names, a copy of the shipped checkpoint
/// and of the f32 model.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let names = std::fs::read_to_string(common::names_path()).unwrap();
        let head: Vec<&str> = names.lines().take(2000).collect();
        std::fs::write(dir.path().join("names.txt"), head.join("\n") + "\n").unwrap();
        for file in ["default.ckpt.safetensors", "model-f32.safetensors"] {
            std::fs::copy(data(file), dir.path().join(file)).unwrap();
        }
        std::fs::copy(
            data("model-f32.card.json"),
            dir.path().join("model-f32.card.json"),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

#[test]
fn an_output_that_is_an_input_is_refused_by_every_command() {
    let work = Work::new();
    let names = work.arg("names.txt");
    let checkpoint = work.arg("default.ckpt.safetensors");
    std::fs::create_dir(work.path("d")).unwrap();
    std::fs::copy(work.path("names.txt"), work.path("d/train.txt")).unwrap();
    // Other names for the same files: a hard link, and a path through `..`.
    std::fs::hard_link(
        work.path("default.ckpt.safetensors"),
        work.path("linked.ckpt"),
    )
    .unwrap();
    std::fs::hard_link(work.path("names.txt"), work.path("names.card.json")).unwrap();
    std::fs::hard_link(work.path("names.txt"), work.path("d/loss.png")).unwrap();
    let through_dots = format!(
        "{}/d/../default.ckpt.safetensors",
        work.dir.path().display()
    );
    let out = work.arg("out");
    let (loss_png, d, t_ckpt) = (work.arg("d/loss.png"), work.arg("d"), work.arg("t.ckpt"));
    std::fs::create_dir_all(work.path("out/split")).unwrap();
    std::fs::copy(work.path("names.txt"), work.path("out/split/train.txt")).unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["export", "--from", &checkpoint, "--out", &checkpoint],
        vec![
            "export",
            "--from",
            &checkpoint,
            "--out",
            &work.arg("linked.ckpt"),
        ],
        vec!["export", "--from", &checkpoint, "--out", &through_dots],
        vec!["train", "--data", &names, "--out", &names, "--steps", "1"],
        vec![
            "train", "--data", &loss_png, "--steps", "1", "--plots", &d, "--out", &t_ckpt,
        ],
        vec![
            "split",
            "--data",
            &work.arg("d/train.txt"),
            "--out-dir",
            &work.arg("d"),
        ],
        vec![
            "verify",
            "--unfolded",
            &checkpoint,
            "--model",
            &work.arg("names.safetensors"),
            "--data",
            &names,
            "--card",
        ],
        vec![
            "stats",
            "--diagnostics",
            &work.arg("d/loss.png"),
            "--plots",
            &work.arg("d"),
        ],
        vec![
            "pipeline",
            "--data",
            &work.arg("out/split/train.txt"),
            "--out-dir",
            &out,
            "--steps",
            "1",
        ],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(str::to_owned).collect())
    .collect();
    // verify's card is `<model>.card.json`: here the names file, under another name.
    std::fs::copy(
        work.path("model-f32.safetensors"),
        work.path("names.safetensors"),
    )
    .unwrap();
    let watched = [
        work.path("names.txt"),
        work.path("default.ckpt.safetensors"),
        work.path("d/train.txt"),
        work.path("out/split/train.txt"),
    ];
    let watched: Vec<&Path> = watched.iter().map(PathBuf::as_path).collect();
    let before = snapshot(&watched);
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = namegen(&args);
        let stderr = assert_fails(&output, 1, "refusing to overwrite");
        assert!(
            stderr.contains("an input of this command"),
            "{args:?}: {stderr}"
        );
        assert_eq!(snapshot(&watched), before, "{args:?} changed an input");
    }
    // Two outputs of one command at the same place.
    let output = namegen(&[
        "train",
        "--data",
        &names,
        "--steps",
        "1",
        "--plots",
        &work.arg("p"),
        "--out",
        &work.arg("p/diagnostics.json"),
    ]);
    assert_fails(&output, 1, "would write it twice");
}

/// Runs `args` with stdout a pipe whose reader has gone before the program even starts: a
/// reader dropped after the spawn could still be open when a quick command (`score`) has
/// written all it had, which then succeeds.
fn with_stdout_closed(args: &[&str]) -> Output {
    // Under the lock, so that no child forked by another thread holds a copy of the reader.
    let spawning = spawning();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = command(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(spawning);
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_after_its_files_are_written() {
    let work = Work::new();
    let names = work.arg("names.txt");
    let checkpoint = work.arg("default.ckpt.safetensors");
    let model = work.arg("model-f32.safetensors");
    let trained = work.arg("trained.ckpt");
    let (split, exported, plots) = (
        work.arg("split"),
        work.arg("m.safetensors"),
        work.arg("plots"),
    );
    let cases: Vec<(Vec<&str>, Vec<PathBuf>)> = vec![
        (vec!["sample", "--model", &model, "-n", "100000"], vec![]),
        (
            vec!["sample", "--model", &model, "-n", "100000", "--json"],
            vec![],
        ),
        (vec!["score", "--model", &model, "emma", "olivia"], vec![]),
        (
            vec!["split", "--data", &names, "--out-dir", &split],
            ["train", "val", "test"]
                .map(|p| work.path(&format!("split/{p}.txt")))
                .to_vec(),
        ),
        (
            vec![
                "export",
                "--from",
                &checkpoint,
                "--out",
                &exported,
                "--dtype",
                "i8",
            ],
            vec![work.path("m.safetensors"), work.path("m.card.json")],
        ),
        (
            vec![
                "verify",
                "--unfolded",
                &checkpoint,
                "--model",
                &model,
                "--data",
                &names,
                "--card",
            ],
            vec![],
        ),
        (
            vec![
                "train", "--data", &names, "--steps", "200", "--out", &trained, "--plots", &plots,
            ],
            vec![
                work.path("trained.ckpt"),
                work.path("plots/loss.png"),
                work.path("plots/diagnostics.json"),
            ],
        ),
        (
            vec![
                "bench",
                "train",
                "--data",
                &names,
                "--steps",
                "5",
                "--warmup",
                "1",
                "--runs",
                "1",
                "--backend",
                "flex",
                "--grad",
                "closed-form",
            ],
            vec![],
        ),
    ];
    for (args, files) in cases {
        let output = with_stdout_closed(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
        for file in files {
            assert!(file.is_file(), "{args:?} did not write {}", file.display());
        }
    }
    // The report comes after the checkpoint, which holds the validation loss.
    let trained = Checkpoint::load(&work.path("trained.ckpt")).unwrap();
    assert!(trained.extra.contains_key("provenance.val_loss"));
    // verify --card wrote the card before printing.
    let card_after = std::fs::read(work.path("model-f32.card.json")).unwrap();
    assert!(text(&card_after).contains("verification"));
    // And `sample | head -1`: the reader takes one name, then goes.
    let mut child = spawn(
        command(&["sample", "--model", &model, "-n", "1000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.trim().is_empty());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(141), "{}", text(&output.stderr));
    // A stdout that fails otherwise (a full disk) is an error, not a quiet end.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = spawn(
        command(&["sample", "--model", &model, "-n", "100000"])
            .stdout(full)
            .stderr(Stdio::piped()),
    )
    .wait_with_output()
    .unwrap();
    assert_fails(
        &output,
        1,
        "cannot write to standard output: No space left on device",
    );
}

/// A child whose stderr lines arrive on a channel, so that a test can act when a phase starts.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = spawn(command(args).stdout(Stdio::null()).stderr(Stdio::piped()));
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most ten minutes: a hung program fails the test) for a line containing `text`.
    fn wait_for(&mut self, text: &str) {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(600))
                .unwrap_or_else(|_| panic!("no {text:?} in: {:?}", self.seen));
            let found = line.contains(text);
            self.seen.push(line);
            if found {
                return;
            }
        }
    }

    fn signal(&self, signal: i32) {
        let status =
            spawn(Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]))
                .wait()
                .unwrap();
        assert!(status.success());
    }

    /// The exit code and every stderr line.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

#[test]
fn signals_in_training_save_a_checkpoint_that_resumes() {
    let work = Work::new();
    let names = work.arg("names.txt");
    for (signal, name) in SIGNALS {
        let out = work.path(&format!("{name}.ckpt"));
        let mut run = Running::start(&[
            "train",
            "--data",
            &names,
            "--steps",
            "100000000",
            "--checkpoint-every",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]);
        run.wait_for("step 0 loss");
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(128 + signal), "{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}: checkpoint at step")),
            "{stderr}"
        );
        assert!(stderr.contains("continue with --resume"), "{stderr}");
        let checkpoint = Checkpoint::load(&out).unwrap();
        let step: u64 = checkpoint.extra["train.step"].parse().unwrap();
        assert!(step >= 1, "{step}");
        assert!(temporaries(work.dir.path()).is_empty());
        // It resumes: one more step from there.
        let output = namegen(&[
            "train",
            "--data",
            &names,
            "--steps",
            "100000000",
            "--resume",
            out.to_str().unwrap(),
            "--stop-after",
            &(step + 1).to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
}

#[test]
fn signals_in_evaluation_keep_the_trained_checkpoint() {
    let work = Work::new();
    // The whole names file: its evaluation takes seconds.
    let names = data("names.txt").display().to_string();
    for (signal, name) in SIGNALS {
        let out = work.path(&format!("{name}.ckpt"));
        let mut run = Running::start(&[
            "train",
            "--data",
            &names,
            "--steps",
            "30",
            "--out",
            out.to_str().unwrap(),
        ]);
        run.wait_for("evaluating");
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(128 + signal), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "interrupted by {name}: checkpoint at step 30 of 30"
            )),
            "{stderr}"
        );
        let checkpoint = Checkpoint::load(&out).unwrap();
        assert_eq!(checkpoint.extra["train.step"], "30");
    }
}

/// A checkpoint with 300-wide hidden layers: exporting and verifying it takes seconds.
fn wide_checkpoint(work: &Work) -> String {
    let out = work.arg("wide.ckpt");
    let output = namegen(&[
        "train",
        "--data",
        &work.arg("names.txt"),
        "--steps",
        "2",
        "--no-eval",
        "--hidden",
        "300,300,300,300,300",
        "--out",
        &out,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    out
}

#[test]
fn signals_in_export_verify_and_the_pipeline_stop_without_half_written_files() {
    let work = Work::new();
    let wide = wide_checkpoint(&work);
    std::fs::write(work.path("old.safetensors"), b"an earlier file").unwrap();
    for (signal, name) in SIGNALS {
        // Export: stopped before writing; the earlier file at --out is untouched.
        let mut run = Running::start(&[
            "export",
            "--from",
            &wide,
            "--out",
            &work.arg("old.safetensors"),
        ]);
        run.wait_for("folding");
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(128 + signal), "{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(work.path("old.safetensors")).unwrap(),
            b"an earlier file"
        );
        assert!(!work.path("old.card.json").exists());
    }
    let output = namegen(&[
        "export",
        "--from",
        &wide,
        "--out",
        &work.arg("wide.safetensors"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let card = std::fs::read(work.path("wide.card.json")).unwrap();
    for (signal, name) in SIGNALS {
        // Verify: the card is not rewritten.
        let mut run = Running::start(&[
            "verify",
            "--unfolded",
            &wide,
            "--model",
            &work.arg("wide.safetensors"),
            "--data",
            &work.arg("names.txt"),
            "--card",
        ]);
        run.wait_for("verifying");
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(128 + signal), "{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        assert_eq!(std::fs::read(work.path("wide.card.json")).unwrap(), card);
    }
    for (signal, name) in SIGNALS {
        // The pipeline, in its training step: the checkpoint is saved, no later step runs.
        let out = work.path(&format!("pipeline-{name}"));
        let mut run = Running::start(&[
            "pipeline",
            "--data",
            &work.arg("names.txt"),
            "--steps",
            "1000000",
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        run.wait_for("step 0 loss");
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(128 + signal), "{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}: checkpoint at step")),
            "{stderr}"
        );
        Checkpoint::load(&out.join("model.ckpt.safetensors")).unwrap();
        assert!(!out.join("model-f32.safetensors").exists());
        assert!(!stderr.contains("$ namegen split"), "{stderr}");
    }
}

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = spawn(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(dir.path()),
        )
        .wait()
        .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root, as CI runs");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = spawn(Command::new("umount").arg(self.dir.path())).wait();
    }
}

#[test]
fn missing_read_only_and_full_locations_are_found_before_the_work() {
    let work = Work::new();
    let names = work.arg("names.txt");
    let checkpoint = work.arg("default.ckpt.safetensors");
    let train = |out: &str| {
        namegen(&[
            "train",
            "--data",
            &names,
            "--steps",
            "100000000",
            "--out",
            out,
        ])
    };

    // Each fails before the names file is read, so before any training.
    let output = train("/nonexistent/dir/m.ckpt");
    let stderr = assert_fails(&output, 1, "the directory /nonexistent/dir does not exist");
    assert!(!stderr.contains("names read"), "{stderr}");
    let trailing = format!("{}/", work.arg("dir"));
    let stderr = assert_fails(&train(&trailing), 1, "names a directory");
    assert!(!stderr.contains("names read"), "{stderr}");
    let stderr = assert_fails(
        &train(&work.arg("names.txt/m.ckpt")),
        1,
        "is not a directory",
    );
    assert!(!stderr.contains("names read"), "{stderr}");

    let read_only = Tmpfs::mount("ro,size=1m");
    let stderr = assert_fails(
        &train(read_only.path("m.ckpt").to_str().unwrap()),
        1,
        "Read-only file system",
    );
    assert!(!stderr.contains("names read"), "{stderr}");
    let output = namegen(&[
        "split",
        "--data",
        &names,
        "--out-dir",
        read_only.path("split").to_str().unwrap(),
    ]);
    assert_fails(&output, 1, "Read-only file system");

    // A 64 KiB file system, with an earlier model on it: the checkpoint (190 KB) is refused
    // before training; an export fails when the disk fills and leaves the earlier file whole.
    let full = Tmpfs::mount("size=64k");
    std::fs::write(full.path("m.safetensors"), b"an earlier model").unwrap();
    // (The checkpoint's size is known once the names file gives the vocabulary.)
    let stderr = assert_fails(
        &train(full.path("m.ckpt").to_str().unwrap()),
        1,
        "bytes are needed and only",
    );
    assert!(!stderr.contains("step 0"), "{stderr}");
    let output = namegen(&[
        "export",
        "--from",
        &checkpoint,
        "--out",
        full.path("m.safetensors").to_str().unwrap(),
    ]);
    assert_fails(&output, 1, "No space left on device");
    assert_eq!(
        std::fs::read(full.path("m.safetensors")).unwrap(),
        b"an earlier model"
    );
    assert!(temporaries(full.dir.path()).is_empty());
}

#[test]
fn links_at_outputs_are_refused_and_modes_follow_the_umask_or_the_replaced_file() {
    let work = Work::new();
    let names = work.arg("names.txt");
    let checkpoint = work.arg("default.ckpt.safetensors");
    std::fs::write(work.path("victim"), b"not yours").unwrap();
    std::os::unix::fs::symlink(work.path("victim"), work.path("link.safetensors")).unwrap();
    std::fs::create_dir(work.path("plots")).unwrap();
    std::os::unix::fs::symlink(work.path("victim"), work.path("plots/loss.png")).unwrap();
    std::fs::create_dir(work.path("split")).unwrap();
    std::os::unix::fs::symlink(work.path("victim"), work.path("split/val.txt")).unwrap();
    let (link, plots, unused, split) = (
        work.arg("link.safetensors"),
        work.arg("plots"),
        work.arg("t.ckpt"),
        work.arg("split"),
    );
    let cases: [Vec<&str>; 3] = [
        vec!["export", "--from", &checkpoint, "--out", &link],
        vec![
            "train", "--data", &names, "--steps", "1", "--plots", &plots, "--out", &unused,
        ],
        vec!["split", "--data", &names, "--out-dir", &split],
    ];
    for args in cases {
        let stderr = assert_fails(&namegen(&args), 1, "is a symbolic link");
        assert!(!stderr.contains("names read"), "{stderr}");
        assert_eq!(std::fs::read(work.path("victim")).unwrap(), b"not yours");
    }
    assert!(!work.path("split/train.txt").exists());

    let mode = |name: &str| {
        std::fs::metadata(work.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let export_with_umask = |umask: &str| {
        let script = format!("umask {umask}; exec \"$0\" export --from \"$1\" --out \"$2\"",);
        let output = output(Command::new("sh").args([
            "-c",
            &script,
            env!("CARGO_BIN_EXE_namegen"),
            &checkpoint,
            &work.arg("m.safetensors"),
        ]));
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    export_with_umask("077");
    assert_eq!(mode("m.safetensors"), 0o600);
    assert_eq!(mode("m.card.json"), 0o600);
    std::fs::remove_file(work.path("m.safetensors")).unwrap();
    export_with_umask("027");
    assert_eq!(mode("m.safetensors"), 0o640);
    // A replaced file keeps its mode, whatever the umask.
    std::fs::set_permissions(
        work.path("m.safetensors"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    export_with_umask("077");
    assert_eq!(mode("m.safetensors"), 0o604);
}

#[test]
fn huge_negative_and_endless_values_are_refused_with_a_message() {
    let work = Work::new();
    let names = work.arg("names.txt");
    let model = work.arg("model-f32.safetensors");
    let unused = work.arg("unused.ckpt");
    let plots = work.arg("p");
    let train = |flags: &[&str]| {
        let mut args = vec!["train", "--data", names.as_str(), "--out", unused.as_str()];
        args.extend_from_slice(flags);
        namegen(&args)
    };
    let cases: [(&[&str], &str); 9] = [
        (
            &["--batch-size", "18446744073709551615"],
            "the batch size 18446744073709551615 is above",
        ),
        (
            &["--batch-size", "65536", "--hidden", "4096,4096,4096,4096"],
            "activations per step",
        ),
        (&["--lr", "-0.1"], "learning rates must be positive"),
        (&["--lr", "0"], "learning rates must be positive"),
        (&["--lr-late", "-1e-3"], "learning rates must be positive"),
        (&["--hidden", "100000"], "width 100000"),
        (&["--block-size", "1000"], "block size 1000"),
        (
            &[
                "--plots",
                &plots,
                "--stats-every",
                "1",
                "--steps",
                "100000000",
            ],
            "would not fit in memory",
        ),
        (
            &["--steps", "10", "--lr", "NaN"],
            "learning rates must be positive",
        ),
    ];
    for (flags, message) in cases {
        let stderr = assert_fails(&train(flags), 1, message);
        assert!(!stderr.contains("step 0"), "{flags:?}: {stderr}");
    }
    assert!(!work.path("unused.ckpt").exists());
    let output = namegen(&[
        "bench",
        "train",
        "--data",
        &names,
        "--runs",
        "18446744073709551615",
    ]);
    assert_fails(&output, 1, "--runs");

    // Names stream: the first come at once, memory stays flat, for a count too large to hold.
    let mut child = spawn(
        command(&["sample", "--model", &model, "-n", "18446744073709551615"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..200_000 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.trim().is_empty());
    }
    assert!(child.try_wait().unwrap().is_none(), "still streaming");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss_kb < 100 * 1024,
        "{rss_kb} kB resident after 200,000 names"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // --exclude-training streams too, and skips the known names.
    let output = namegen(&[
        "sample",
        "--model",
        &model,
        "-n",
        "3000",
        "--exclude-training",
        "--data",
        &names,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let known: std::collections::HashSet<String> = std::fs::read_to_string(work.path("names.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let sampled: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    assert_eq!(sampled.len(), 3000);
    assert!(sampled.iter().all(|n| !known.contains(n)));

    // Endless and oversized inputs: refused from their size, before they are read.
    let sparse = |name: &str, len: u64| {
        let path = work.path(name);
        std::fs::File::create(&path).unwrap().set_len(len).unwrap();
        path.display().to_string()
    };
    let huge_model = sparse("huge.safetensors", 2 << 30);
    let huge_names = sparse("huge.txt", (64 << 20) + 1);
    let unused_model = work.arg("unused.safetensors");
    let cases: [Vec<&str>; 6] = [
        vec![
            "train",
            "--data",
            "/dev/zero",
            "--steps",
            "1",
            "--out",
            &unused,
        ],
        vec![
            "train",
            "--data",
            &huge_names,
            "--steps",
            "1",
            "--out",
            &unused,
        ],
        vec!["sample", "--model", &huge_model],
        vec!["score", "--model", &huge_model, "emma"],
        vec!["export", "--from", &huge_model, "--out", &unused_model],
        vec!["sample", "--model", "/dev/zero"],
    ];
    for args in cases {
        assert_fails(&namegen(&args), 1, "more than a");
    }
}

/// `model-f32.safetensors` with one value of `tensor` replaced by `value`.
fn model_with(tensor: &str, value: f32) -> Vec<u8> {
    let mut bytes = std::fs::read(data("model-f32.safetensors")).unwrap();
    let (header_len, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = header.info(tensor).unwrap();
    let at = 8 + header_len + info.data_offsets.0;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    bytes
}

#[test]
fn weights_that_can_overflow_f32_are_refused_not_sampled_as_nan() {
    let work = Work::new();
    for tensor in ["layers.2.weight", "emb.weight", "layers.5.bias"] {
        let path = work.path("huge-weights.safetensors");
        std::fs::write(&path, model_with(tensor, 3e38)).unwrap();
        for args in [
            vec!["sample", "--model", path.to_str().unwrap()],
            vec!["score", "--model", path.to_str().unwrap(), "emma"],
        ] {
            let stderr = assert_fails(&namegen(&args), 1, "not a valid folded model");
            assert!(stderr.contains("too large"), "{tensor}: {stderr}");
        }
    }
    // A checkpoint whose gamma folds to values past f16's range exports to f32, not to f16.
    let mut checkpoint = Checkpoint::load(&data("default.ckpt.safetensors")).unwrap();
    checkpoint.layers[1].gamma[0] = 1e6;
    let path = work.path("big-gamma.ckpt");
    std::fs::write(&path, checkpoint.to_bytes()).unwrap();
    let output = namegen(&[
        "export",
        "--from",
        path.to_str().unwrap(),
        "--out",
        &work.arg("g.safetensors"),
        "--dtype",
        "f16",
    ]);
    let stderr = assert_fails(&output, 1, "f16 cannot store");
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(!work.path("g.safetensors").exists());
    // Weights of 3e38 in the checkpoint: the export refuses them too.
    let mut checkpoint = Checkpoint::load(&data("default.ckpt.safetensors")).unwrap();
    checkpoint.layers[2].weight[0] = 3e38;
    std::fs::write(&path, checkpoint.to_bytes()).unwrap();
    let output = namegen(&[
        "export",
        "--from",
        path.to_str().unwrap(),
        "--out",
        &work.arg("g.safetensors"),
    ]);
    let stderr = assert_fails(&output, 1, &path.display().to_string());
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(!work.path("g.safetensors").exists());
}

#[test]
fn a_killed_runs_temporaries_are_removed_by_the_next_run() {
    let work = Work::new();
    // The temporary of a process that is gone: a child that has exited.
    let mut dead = spawn(&mut Command::new("true"));
    let pid = dead.id();
    dead.wait().unwrap();
    let stale = work.path(&format!(".m.safetensors.{pid}.namegen-tmp"));
    std::fs::write(&stale, b"half a model").unwrap();
    // A live process's temporary is not ours to remove.
    let mut alive = spawn(Command::new("sleep").arg("600"));
    let live = work.path(&format!(".m.safetensors.{}.namegen-tmp", alive.id()));
    std::fs::write(&live, b"being written").unwrap();
    let output = namegen(&[
        "export",
        "--from",
        &work.arg("default.ckpt.safetensors"),
        "--out",
        &work.arg("m.safetensors"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!stale.exists());
    assert!(live.exists());
    alive.kill().unwrap();
    alive.wait().unwrap();
    std::fs::remove_file(&live).unwrap();

    // SIGKILL while checkpoints are written every step, then the same command again.
    let out = work.arg("k.ckpt");
    let args = [
        "train",
        "--data",
        &work.arg("names.txt"),
        "--steps",
        "100000000",
        "--checkpoint-every",
        "1",
        "--out",
        &out,
    ];
    let mut run = Running::start(&args);
    run.wait_for("step 0 loss");
    std::thread::sleep(Duration::from_millis(300));
    run.signal(9);
    let (code, _) = run.finish();
    assert_eq!(code, None, "killed");
    let mut run = Running::start(&args);
    run.wait_for("step 0 loss");
    run.signal(SIGTERM);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(128 + SIGTERM), "{stderr}");
    assert_eq!(temporaries(work.dir.path()), Vec::<String>::new());
    Checkpoint::load(Path::new(&out)).unwrap();
}

#[test]
fn messages_name_the_real_cause() {
    let work = Work::new();
    let names = work.arg("names.txt");
    // Two trainings with different seeds: verifying one's model against the other's
    // checkpoint says that they are different runs.
    for seed in ["1", "2"] {
        let output = namegen(&[
            "train",
            "--data",
            &names,
            "--steps",
            "20",
            "--no-eval",
            "--seed",
            seed,
            "--out",
            &work.arg(&format!("s{seed}.ckpt")),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let output = namegen(&[
        "export",
        "--from",
        &work.arg("s1.ckpt"),
        "--out",
        &work.arg("s1.safetensors"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = namegen(&[
        "verify",
        "--unfolded",
        &work.arg("s2.ckpt"),
        "--model",
        &work.arg("s1.safetensors"),
        "--data",
        &names,
    ]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("was not exported from") && stderr.contains("provenance differs"),
        "{stderr}"
    );
    assert!(stderr.contains("provenance."), "{stderr}");

    // A bad block size in a checkpoint is blamed on its own key.
    let mut bytes = std::fs::read(data("default.ckpt.safetensors")).unwrap();
    let needle = br#""block_size":"3""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the key is in the header");
    bytes[at + needle.len() - 2] = b'0';
    std::fs::write(work.path("bad.ckpt"), &bytes).unwrap();
    let output = namegen(&[
        "export",
        "--from",
        &work.arg("bad.ckpt"),
        "--out",
        &work.arg("x.safetensors"),
    ]);
    let stderr = assert_fails(&output, 1, "block_size");
    assert!(!stderr.contains("\"hidden\""), "{stderr}");
}
