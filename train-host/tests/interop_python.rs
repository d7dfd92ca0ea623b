//! Interoperability with Python: an unfolded checkpoint written by numpy + safetensors (no
//! code of ours) exports, and the folded files load in Python with the numpy reader printed
//! in model/FORMAT.md, whose logits agree with the sampler's. Needs python3 with numpy and
//! safetensors (tests/requirements.txt, installed by tests/run.sh).

use std::path::Path;
use std::process::Command;

use namegen_model::Context;
use namegen_sampler::{Forward, ModelView};

const WRITER: &str = r#"
import sys
import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(0)
vocab = ".abcdefghijklmnopqrstuvwxyz"
dims = [(30, 100)] + [(100, 100)] * 4 + [(100, 27)]
tensors = {"emb.weight": rng.standard_normal((27, 10)).astype(np.float32)}
for i, (n_in, n_out) in enumerate(dims):
    tensors[f"layers.{i}.weight"] = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    tensors[f"layers.{i}.bn.gamma"] = rng.uniform(0.5, 1.5, n_out).astype(np.float32)
    tensors[f"layers.{i}.bn.beta"] = rng.normal(0, 0.1, n_out).astype(np.float32)
    tensors[f"layers.{i}.bn.running_mean"] = rng.normal(0, 0.5, n_out).astype(np.float32)
    tensors[f"layers.{i}.bn.running_var"] = rng.uniform(0.1, 2.0, n_out).astype(np.float32)
save_file(tensors, sys.argv[1], metadata={
    "format": "namegen-unfolded", "format_version": "1",
    "block_size": "3", "embed_dim": "10", "hidden": "100,100,100,100,100",
    "vocab": vocab, "bn_eps": "1e-05",
})
"#;

/// Runs the numpy reader of FORMAT.md on a model and prints the logits of given contexts.
const READER: &str = r#"
import json, re, sys
doc = open(sys.argv[1]).read()
snippet = re.search(r'#+ Reading one with numpy\s+```python\n(.*?)```', doc, re.S).group(1)
snippet = snippet.replace('path = "data/model-f32.safetensors"', f"path = {sys.argv[2]!r}")
scope = {}
exec(snippet, scope)
contexts = json.loads(sys.argv[3])
print(json.dumps([[float(v) for v in scope["logits"](c)] for c in contexts]))
"#;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (tests/run.sh installs numpy and safetensors)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn numpy_written_checkpoints_export_and_folded_files_read_back_in_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("numpy.ckpt.safetensors");
    python(WRITER, &[ckpt.to_str().unwrap()]);
    let format_doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/FORMAT.md");
    let mut rng = namegen_model::Rng::new(4);
    let mut context = Context::start(3);
    let contexts: Vec<Vec<u8>> = (0..50)
        .map(|_| {
            let ids = context.ids().to_vec();
            context.push(rng.below(27) as u8);
            ids
        })
        .collect();
    for dtype in ["f32", "f16", "i8"] {
        let model = dir.path().join(format!("model-{dtype}.safetensors"));
        let out = Command::new(env!("CARGO_BIN_EXE_namegen"))
            .args([
                "export",
                "--from",
                ckpt.to_str().unwrap(),
                "--out",
                model.to_str().unwrap(),
                "--dtype",
                dtype,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = serde_json::to_string(&contexts).unwrap();
        // The snippet prints its own example first; the logits are the last line.
        let printed = python(
            READER,
            &[format_doc.to_str().unwrap(), model.to_str().unwrap(), &json],
        );
        let numpy: Vec<Vec<f64>> = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
        let bytes = std::fs::read(&model).unwrap();
        let view = ModelView::parse(&bytes).unwrap();
        let mut forward = Forward::<100>::new();
        for (context, expected) in contexts.iter().zip(&numpy) {
            let ours = forward.logits(&view, context);
            for (a, b) in ours.iter().zip(expected) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{dtype}: {a} vs {b}"
                );
            }
        }
    }
}
