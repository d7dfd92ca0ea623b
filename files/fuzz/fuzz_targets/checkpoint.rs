//! Any bytes as an unfolded checkpoint: the reader must never panic, and whatever it accepts
//! must be written back to bytes that read as the same checkpoint, and that write themselves
//! again unchanged (the writer is reproducible).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use namegen_files::checkpoint::Checkpoint;

fuzz_target!(|bytes: &[u8]| {
    let Ok(checkpoint) = Checkpoint::from_bytes(Path::new("fuzz.ckpt"), bytes) else {
        return;
    };
    assert!(checkpoint.embedding.iter().all(|v| v.is_finite()));
    for layer in &checkpoint.layers {
        assert!(layer.running_var.iter().all(|&v| v >= 0.0));
    }
    let written = checkpoint.to_bytes();
    let again = Checkpoint::from_bytes(Path::new("fuzz.ckpt"), &written)
        .expect("a written checkpoint reads back");
    assert_eq!(again, checkpoint);
    assert_eq!(again.to_bytes(), written);
});
