//! Fold, export and verify: a briefly trained model in every dtype keeps its bound on every
//! context; the q8 export of the shipped checkpoint is the numpy reference's quantisation and
//! keeps its bound through `namegen verify`; extreme BatchNorms stay within the f32 bound or are refused; malformed
//! checkpoints are refused with their own message and no output file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use namegen_files::checkpoint::Checkpoint;
use namegen_files::dataset::SplitExamples;
use namegen_host::export::{ExportError, FoldedWeights, export};
use namegen_host::q8::QuantizeError;
use namegen_host::trainer::{Backend, GradPath, Trainer};
use namegen_host::verify::{BurnLogits, ContextSet, SamplerLogits, compare};
use namegen_model::q8::split_bias_shift;
use namegen_model::{Dtype, Rng};
use namegen_sampler::ModelView;

fn trained(steps: u64) -> (Checkpoint, SplitExamples) {
    let dataset = common::small_dataset(3000);
    let examples = SplitExamples::new(&dataset, 42, 3).unwrap();
    let mut trainer = Trainer::new(
        dataset,
        common::short_recipe(steps),
        Backend::Flex,
        GradPath::ClosedForm,
    )
    .unwrap();
    while !trainer.finished() {
        trainer.step(None).unwrap();
    }
    (trainer.checkpoint(None), examples)
}

#[test]
fn a_trained_model_keeps_every_dtype_bound_on_every_context() {
    let (checkpoint, examples) = trained(300);
    let config = checkpoint.config;
    let contexts = ContextSet::new(config.vocab_size(), config.block_size(), 0);
    assert!(contexts.exhaustive);
    assert_eq!(contexts.len(), 27usize.pow(3));
    // The pipeline's dtypes, and q8, which `namegen export --dtype q8` writes.
    for dtype in Dtype::ALL {
        let exported = export(&checkpoint, dtype).unwrap();
        let model = ModelView::parse(&exported.bytes).unwrap();
        assert_eq!(model.dtype(), dtype);
        let report = compare(
            &mut BurnLogits::new(&checkpoint, Backend::Flex),
            &mut SamplerLogits::new(&model),
            config.vocab_size(),
            dtype,
            &contexts,
            &examples.val.contexts,
            &examples.val.targets,
        );
        assert!(report.passed, "{report}");
        // The bounds themselves, stated independently of Bound::for_dtype.
        match dtype {
            Dtype::F32 => assert!(report.max_logit_diff <= 1e-4, "{report}"),
            Dtype::F16 => assert!(report.mean_kl <= 1e-4, "{report}"),
            Dtype::I8 => assert!(
                report.val_loss_folded - report.val_loss_unfolded <= 0.01,
                "{report}"
            ),
            Dtype::Q8 => assert!(
                report.val_loss_folded - report.val_loss_unfolded <= 0.003,
                "{report}"
            ),
        }
        assert!(report.top1_agreement > 0.9, "{report}");
        assert!(
            report.val_loss_unfolded > 1.5 && report.val_loss_unfolded < 3.3,
            "{report}"
        );
    }
}

/// A checkpoint of the default shape with random weights and BatchNorms drawn by `bn`.
fn random_checkpoint(seed: u64, bn: impl Fn(&mut Rng, usize) -> [f32; 4]) -> Checkpoint {
    let (mut checkpoint, _) = trained(1);
    let mut rng = Rng::new(seed);
    let layers = checkpoint.layers.len();
    for (i, layer) in checkpoint.layers.iter_mut().enumerate() {
        for r in 0..layer.gamma.len() {
            let [gamma, beta, mean, var] =
                bn(&mut rng, if i + 1 == layers { usize::MAX } else { i });
            (
                layer.gamma[r],
                layer.beta[r],
                layer.running_mean[r],
                layer.running_var[r],
            ) = (gamma, beta, mean, var);
        }
    }
    checkpoint
}

/// Exports `checkpoint` in f32: `Some(max |logit difference|)` when accepted, after
/// checking that figure independently against the unfolded model in burn; `None` when
/// refused as not representable (which must then be true of the measured difference).
fn export_f32(checkpoint: &Checkpoint) -> Option<f64> {
    match export(checkpoint, Dtype::F32) {
        Ok(exported) => {
            let model = ModelView::parse(&exported.bytes).unwrap();
            let config = checkpoint.config;
            let contexts = ContextSet::new(config.vocab_size(), config.block_size(), 0);
            let report = compare(
                &mut BurnLogits::new(checkpoint, Backend::Flex),
                &mut SamplerLogits::new(&model),
                config.vocab_size(),
                Dtype::F32,
                &contexts,
                &[0, 0, 0],
                &[1],
            );
            assert!(
                exported.check.max_logit_diff <= 1e-4 && report.max_logit_diff <= 1e-4,
                "{report}"
            );
            Some(exported.check.max_logit_diff)
        }
        Err(ExportError::NotRepresentable {
            max_logit_diff,
            bound,
        }) => {
            assert!(max_logit_diff > bound && bound == 1e-4);
            None
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn extreme_batchnorms_stay_within_the_f32_bound_or_are_refused() {
    let hidden_only = |bn: fn(&mut Rng) -> [f32; 4]| {
        move |rng: &mut Rng, layer| {
            if layer == usize::MAX {
                [1.0, 0.0, 0.0, 1.0]
            } else {
                bn(rng)
            }
        }
    };
    // Tiny gammas over near-zero variances.
    let tiny = random_checkpoint(
        1,
        hidden_only(|rng| [1e-3 * rng.next_f32(), 0.1, 0.0, 1e-12]),
    );
    assert!(export_f32(&tiny).is_some(), "tiny gammas are representable");
    // Large running means (the folded bias is large, the tanh saturates).
    let means = random_checkpoint(
        2,
        hidden_only(|rng| [1.0, 0.0, 1e4 * rng.normal() as f32, 1.0]),
    );
    assert!(
        export_f32(&means).is_some(),
        "large means are representable"
    );
    // Huge gammas over near-zero variances: scales of 1e3 to 1e6. Accepted only within the bound.
    for seed in 3..6 {
        let huge = random_checkpoint(
            seed,
            hidden_only(|rng| {
                [
                    [10.0, -50.0, 1.0][rng.below(3) as usize],
                    0.0,
                    0.0,
                    [1e-12, 1e-6, 1.0][rng.below(3) as usize],
                ]
            }),
        );
        let _ = export_f32(&huge);
    }
    // An output layer whose folded bias cancels a huge W x: f32 cannot hold it to 1e-4.
    let hopeless = random_checkpoint(6, |rng, layer| {
        if layer == usize::MAX {
            [3e3, 0.0, 1e6 * rng.normal() as f32, 1e-8]
        } else {
            [1.0, 0.0, 0.0, 1.0]
        }
    });
    assert_eq!(export_f32(&hopeless), None, "refused");
}

fn namegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namegen"))
        .args(args)
        .output()
        .expect("namegen runs")
}

/// Rewrites a valid checkpoint through the safetensors crate with one thing changed.
fn mutated(
    valid: &[u8],
    change: impl Fn(
        &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
        &mut std::collections::HashMap<String, String>,
    ),
) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(valid).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(valid).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    change(&mut tensors, &mut metadata);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn set_f32(
    tensors: &mut [(String, safetensors::Dtype, Vec<usize>, Vec<u8>)],
    name: &str,
    index: usize,
    value: f32,
) {
    let t = tensors.iter_mut().find(|t| t.0 == name).unwrap();
    t.3[index * 4..index * 4 + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn malformed_checkpoints_are_refused_with_their_own_error_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoint, _) = trained(1);
    let valid = checkpoint.to_bytes();
    type Change = Box<
        dyn Fn(
            &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
            &mut std::collections::HashMap<String, String>,
        ),
    >;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "missing",
            Box::new(|t, _| t.retain(|t| t.0 != "layers.2.bn.beta")),
            "tensor \"layers.2.bn.beta\": missing",
        ),
        (
            "extra",
            Box::new(|t, _| {
                t.push((
                    "layers.2.bias".into(),
                    safetensors::Dtype::F32,
                    vec![100],
                    vec![0; 400],
                ))
            }),
            "tensor \"layers.2.bias\": not part of an unfolded checkpoint",
        ),
        (
            "shape",
            Box::new(|t, _| {
                let w = t.iter_mut().find(|t| t.0 == "layers.0.weight").unwrap();
                w.2 = vec![30, 100];
            }),
            "tensor \"layers.0.weight\": shape [30, 100] is not [100, 30]",
        ),
        (
            "dtype",
            Box::new(|t, _| {
                let w = t.iter_mut().find(|t| t.0 == "emb.weight").unwrap();
                w.1 = safetensors::Dtype::I32;
            }),
            "tensor \"emb.weight\": dtype I32 is not F32",
        ),
        (
            "nan",
            Box::new(|t, _| set_f32(t, "layers.3.weight", 17, f32::NAN)),
            "tensor \"layers.3.weight\": value 17 is not finite",
        ),
        (
            "variance",
            Box::new(|t, _| set_f32(t, "layers.4.bn.running_var", 5, -0.5)),
            "tensor \"layers.4.bn.running_var\": a running variance is negative",
        ),
        (
            "format",
            Box::new(|_, m| {
                m.insert("format".into(), "namegen-folded".into());
            }),
            "metadata \"format\"",
        ),
        (
            "vocab",
            Box::new(|_, m| {
                m.insert("vocab".into(), "abc".into());
            }),
            "metadata \"vocab\"",
        ),
    ];
    for (label, change, expected) in cases {
        let path = dir.path().join(format!("{label}.ckpt.safetensors"));
        std::fs::write(&path, mutated(&valid, change)).unwrap();
        let out = dir.path().join(format!("{label}.safetensors"));
        let result = namegen(&[
            "export",
            "--from",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{label}: accepted");
        assert!(stderr.contains(expected), "{label}: {stderr}");
        assert!(
            !out.exists() && !out.with_extension("card.json").exists(),
            "{label}: wrote output"
        );
    }
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a model").unwrap();
    let result = namegen(&[
        "export",
        "--from",
        garbage.to_str().unwrap(),
        "--out",
        dir.path().join("g.safetensors").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&result.stderr).contains("not a safetensors file"));
    let missing = namegen(&[
        "export",
        "--from",
        "/nonexistent.ckpt",
        "--out",
        dir.path().join("m").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.ckpt"));
    assert!(!Path::new(&dir.path().join("m")).exists());
}

#[test]
fn export_verify_sample_and_score_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoint, _) = trained(200);
    let ckpt = dir.path().join("c.ckpt.safetensors");
    std::fs::write(&ckpt, checkpoint.to_bytes()).unwrap();
    let names = dir.path().join("names.txt");
    let text = std::fs::read_to_string(common::names_path()).unwrap();
    std::fs::write(
        &names,
        text.lines().take(3000).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let model = dir.path().join("m-i8.safetensors");
    let (c, m, d) = (
        ckpt.to_str().unwrap(),
        model.to_str().unwrap(),
        names.to_str().unwrap(),
    );
    assert!(
        namegen(&["export", "--from", c, "--out", m, "--dtype", "i8"])
            .status
            .success()
    );
    let verify = namegen(&[
        "verify",
        "--unfolded",
        c,
        "--model",
        m,
        "--data",
        d,
        "--card",
    ]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        stdout.contains("all 19683 contexts") && stdout.contains("PASS"),
        "{stdout}"
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.with_extension("card.json")).unwrap()).unwrap();
    assert_eq!(card["dtype"], "i8");
    assert_eq!(card["parameters"]["unfolded_trainable"], 47_024);
    assert_eq!(card["bytes"], std::fs::metadata(&model).unwrap().len());
    assert_eq!(card["bytes_per_dtype"]["i8"], card["bytes"]);
    assert_eq!(card["verification"]["passed"], true);

    let sample = namegen(&[
        "sample", "--model", m, "-n", "7", "--seed", "3", "--prefix", "ka",
    ]);
    let listed: Vec<String> = String::from_utf8_lossy(&sample.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed.len(), 7);
    assert!(listed.iter().all(|n| n.starts_with("ka")), "{listed:?}");
    let again = namegen(&[
        "sample", "--model", m, "-n", "7", "--seed", "3", "--prefix", "ka",
    ]);
    assert_eq!(sample.stdout, again.stdout, "same seed, same names");

    let fresh = namegen(&[
        "sample",
        "--model",
        m,
        "-n",
        "30",
        "--exclude-training",
        "--data",
        d,
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&fresh.stdout).unwrap();
    let known: std::collections::HashSet<&str> = text.lines().take(3000).collect();
    assert_eq!(rows.as_array().unwrap().len(), 30);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| !known.contains(r["name"].as_str().unwrap()))
    );

    let scored = namegen(&["score", "--model", m, "--json", "anna", "zzqx"]);
    let rows: serde_json::Value = serde_json::from_slice(&scored.stdout).unwrap();
    assert!(rows[0]["perplexity"].as_f64().unwrap() < rows[1]["perplexity"].as_f64().unwrap());
    let bad = namegen(&["score", "--model", m, "an1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'1'"));
    let bad = namegen(&["sample", "--model", m, "--top-p", "0"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("top-p"));
}

#[test]
fn the_dumped_split_files_reproduce_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = namegen(&[
        "split",
        "--data",
        common::names_path().to_str().unwrap(),
        "--seed",
        "42",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let dataset = namegen_files::dataset::Dataset::load(&common::names_path()).unwrap();
    let read = |p: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(p))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let (train, val, test) = (read("train.txt"), read("val.txt"), read("test.txt"));
    assert_eq!((train.len(), val.len(), test.len()), (25_626, 3_203, 3_204));
    // The examples built from the files are exactly the trainer's examples of each part.
    let examples = SplitExamples::new(&dataset, 42, 3).unwrap();
    for (names, part) in [
        (&train, &examples.train),
        (&val, &examples.val),
        (&test, &examples.test),
    ] {
        let targets: Vec<u8> = names
            .iter()
            .flat_map(|n| {
                n.chars()
                    .map(|c| dataset.vocab.encode(c).unwrap())
                    .chain([0])
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(targets, part.targets);
    }
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

/// A q8 file's tensors by name: (safetensors dtype, bytes).
fn q8_tensors(bytes: &[u8]) -> std::collections::BTreeMap<String, (String, Vec<u8>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, t)| (n, (format!("{:?}", t.dtype()), t.data().to_vec())))
        .collect()
}

/// The numpy reference's q8 file (`sampler/tests/data/make_q8_fixture.py`, written from
/// `data/model-f32.safetensors`).
fn numpy_fixture() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sampler/tests/data/model-q8.safetensors"),
    )
    .unwrap()
}

/// The shipped f32 model's weights as the exporter's f64 folded weights: the numbers the
/// numpy reference starts from.
fn shipped_f32_as_folded() -> (FoldedWeights, namegen_model::Vocabulary) {
    let bytes = std::fs::read(data("model-f32.safetensors")).unwrap();
    let view = ModelView::parse(&bytes).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let values = |name: String| -> Vec<f64> {
        let t = st.tensor(&name).unwrap();
        t.data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect()
    };
    let layers = view.config().n_layers();
    let folded = FoldedWeights {
        config: *view.config(),
        embedding: values("emb.weight".into()),
        weights: (0..layers)
            .map(|i| values(format!("layers.{i}.weight")))
            .collect(),
        biases: (0..layers)
            .map(|i| values(format!("layers.{i}.bias")))
            .collect(),
    };
    (folded, view.vocab().to_vocabulary())
}

/// The exporter's recipe and the numpy reference's agree bit for bit when they start from the
/// same numbers: quantising the shipped f32 model gives the fixture's every tensor.
#[test]
fn q8_of_the_f32_model_is_the_numpy_references_file() {
    let (folded, vocab) = shipped_f32_as_folded();
    let ours = folded
        .to_safetensors(&vocab, Dtype::Q8, &Default::default())
        .unwrap();
    ModelView::parse(&ours).unwrap();
    assert_same_tensors(&ours, &numpy_fixture());
}

/// Both q8 files hold the same tensors, name for name, dtype for dtype and byte for byte.
fn assert_same_tensors(ours: &[u8], theirs: &[u8]) {
    let (ours, theirs) = (q8_tensors(ours), q8_tensors(theirs));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, tensor) in &ours {
        assert!(*tensor == theirs[name], "{name} differs");
    }
}

/// The exporter quantises the f64 fold, the numpy reference the same fold rounded to f32
/// (`data/model-f32.safetensors`): they could differ where the f32 rounding (a relative
/// 2^-24) crosses a rounding boundary. For the shipped checkpoint none does: every tensor is
/// the fixture's. The closest call is the multipliers: each row's real multiplier differs by
/// up to 2^-23 relative, because its scale `max |w| / 127` (and, for layer 0, the
/// embedding's) comes from a maximum the f32 file holds rounded (2^-24 relative each), and
/// a 16-bit multiplier's unit is 2^-15 to 2^-14 of it.
#[test]
fn q8_export_of_the_shipped_checkpoint_is_the_numpy_references_quantisation() {
    let checkpoint = Checkpoint::load(&data("default.ckpt.safetensors")).unwrap();
    let exported = export(&checkpoint, Dtype::Q8).unwrap();
    assert!(exported.check.exhaustive && exported.check.contexts == 19_683);
    assert_same_tensors(&exported.bytes, &numpy_fixture());
    // The shipped q8 model is this export, byte for byte.
    assert_eq!(
        exported.bytes,
        std::fs::read(data("model-q8.safetensors")).unwrap()
    );
}

/// The exporter refuses a q8 bias that a `bias_shift` word cannot hold (24 bits,
/// `-2^23..2^23`), naming its layer and row, and writes both ends of the range.
#[test]
fn q8_biases_beyond_24_bits_are_refused() {
    let (mut folded, vocab) = shipped_f32_as_folded();
    let last = folded.weights.len() - 1;
    let (row, cols) = (3, folded.weights[last].len() / folded.biases[last].len());
    let weights = &folded.weights[last][row * cols..(row + 1) * cols];
    // One accumulator unit of the output layer's row: its weights' scale times its inputs'
    // (a `tanh` output, 1/127).
    let unit = weights.iter().fold(0.0f64, |m, w| m.max(w.abs())) / 127.0 / 127.0;
    for (units, fits) in [
        (8_388_607.0, true),
        (-8_388_608.0, true),
        (8_388_608.0, false),
        (-8_388_609.0, false),
        (1e12, false),
    ] {
        folded.biases[last][row] = units * unit;
        match folded.to_safetensors(&vocab, Dtype::Q8, &Default::default()) {
            Ok(bytes) => {
                assert!(fits, "{units}");
                let (_, word) = &q8_tensors(&bytes)[&format!("layers.{last}.bias_shift")];
                let word = i32::from_le_bytes(word[4 * row..4 * row + 4].try_into().unwrap());
                assert_eq!(f64::from(split_bias_shift(word).0), units);
            }
            Err(error) => {
                assert!(!fits, "{units}: {error}");
                assert_eq!(
                    error,
                    QuantizeError::Bias {
                        layer: last,
                        row,
                        value: units
                    }
                );
                assert!(
                    error.to_string().contains("does not fit 24 bits"),
                    "{error}"
                );
            }
        }
    }
}

/// `namegen export --dtype q8` and `namegen verify --card` on the shipped checkpoint: the
/// bound enforced for q8 (validation loss up by at most 0.003 nats, `Bound::for_dtype`;
/// FORMAT.md's tolerance for integer inference is 0.01) holds, with its figures in the card.
#[test]
fn q8_export_and_verify_of_the_shipped_checkpoint_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model-q8.safetensors");
    let (c, m) = (data("default.ckpt.safetensors"), model.to_str().unwrap());
    let c = c.to_str().unwrap();
    let names = data("names.txt");
    let export = namegen(&["export", "--from", c, "--out", m, "--dtype", "q8"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let verify = namegen(&[
        "verify",
        "--unfolded",
        c,
        "--model",
        m,
        "--data",
        names.to_str().unwrap(),
        "--card",
    ]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(
        stdout.contains("dtype q8: all 19683 contexts") && stdout.contains("PASS"),
        "{stdout}"
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.with_extension("card.json")).unwrap()).unwrap();
    assert_eq!(card["dtype"], "q8");
    assert_eq!(card["bytes"], std::fs::metadata(&model).unwrap().len());
    assert_eq!(card["bytes_per_dtype"]["q8"], card["bytes"]);
    assert_eq!(card["bytes_per_dtype"]["i8"], 52_238);
    let v = &card["verification"];
    assert_eq!(v["passed"], true);
    assert_eq!(v["bound"]["ValLossIncrease"], 0.003);
    let increase =
        v["val_loss_folded"].as_f64().unwrap() - v["val_loss_unfolded"].as_f64().unwrap();
    assert!((0.0..=0.003).contains(&increase), "{increase}");
    // The numpy reference's figure for its file (2.075812), whose integers are this export's.
    assert!(
        (v["val_loss_folded"].as_f64().unwrap() - 2.075812).abs() < 2e-6,
        "{v}"
    );
    assert!(v["top1_agreement"].as_f64().unwrap() > 0.97, "{v}");
    // The export's own check, like the other dtypes': max |logit - unfolded| on every context.
    let check = card["export_check"]["max_logit_diff"].as_f64().unwrap();
    assert!(check > 0.0 && check < 1.0, "{check}");
}
