//! Any bytes through the loader: it must never panic, and whatever it accepts must hold up to
//! every promise the view makes, read through the public accessors, and give finite logits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use namegen_model::config::{MAX_BLOCK_SIZE, MAX_WIDTH};
use namegen_model::{Dtype, TensorName};
use namegen_sampler::{Forward, Matrix, ModelView};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(view) = ModelView::parse(bytes) {
        check(&view);
        check_logits(&view);
    }
});

/// The loader bounds every value of the forward pass over all contexts, so any context must
/// give finite logits; a few that differ in every position (the start, the last symbol
/// repeated, the symbols in order and in reverse) stand for all of them.
fn check_logits(view: &ModelView<'_>) {
    // Every model the format allows fits buffers of the widest layer it allows.
    Forward::<MAX_WIDTH>::check(view).expect("an accepted model fits the widest buffers");
    let mut forward = Forward::<MAX_WIDTH>::new();
    let config = view.config();
    let (vocab, block) = (config.vocab_size(), config.block_size());
    let mut context = [0u8; MAX_BLOCK_SIZE];
    for kind in 0..4 {
        for (i, slot) in context[..block].iter_mut().enumerate() {
            let symbol = match kind {
                0 => 0,
                1 => vocab - 1,
                2 => i % vocab,
                _ => vocab - 1 - i % vocab,
            };
            *slot = u8::try_from(symbol).expect("vocabularies hold at most 128 symbols");
        }
        let logits = forward.logits(view, &context[..block]);
        assert_eq!(logits.len(), vocab);
        assert!(
            logits.iter().all(|z| z.is_finite()),
            "context {:?} gives logits {logits:?}",
            &context[..block]
        );
    }
}

fn check(view: &ModelView<'_>) {
    let config = view.config();
    assert_eq!(view.vocab().len(), config.vocab_size());
    let embedding = view.embedding();
    assert_eq!(
        (embedding.rows(), embedding.cols()),
        (config.vocab_size(), config.embed_dim())
    );
    check_matrix(embedding, view.dtype());
    let mut layers = 0;
    for (i, layer) in view.layers().enumerate() {
        let shape = TensorName::Weight(i)
            .shape(config)
            .expect("a layer the config has");
        assert_eq!([layer.weight.rows(), layer.weight.cols()], shape.dims());
        check_matrix(&layer.weight, view.dtype());
        if view.dtype() == Dtype::Q8 {
            // q8's bias is a 24-bit integer, with the row's multiplier and shift.
            let requant = &layer.requant;
            assert_eq!(requant.rows(), layer.weight.rows());
            assert!((0..requant.rows()).all(|r| {
                requant.multiplier(r) > 0
                    && (-31..=30).contains(&requant.shift(r))
                    && (-(1 << 23)..1 << 23).contains(&requant.bias(r))
            }));
        } else {
            assert_eq!(layer.bias.len(), layer.weight.rows());
            assert!(layer.bias.iter().all(f32::is_finite));
        }
        layers += 1;
    }
    assert_eq!(layers, config.n_layers());
}

fn check_matrix(m: &Matrix<'_>, dtype: Dtype) {
    assert_eq!(m.dtype(), dtype);
    for row in 0..m.rows() {
        let scale = m.scale(row);
        assert!(scale.is_finite() && scale > 0.0);
        let bytes = m.row_bytes(row);
        assert_eq!(bytes.len(), m.cols() * dtype.size());
        let finite = match dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .all(|b| half::f16::from_le_bytes([b[0], b[1]]).is_finite()),
            Dtype::I8 | Dtype::Q8 => bytes.iter().all(|&b| b != 0x80),
        };
        assert!(
            finite,
            "row {row} holds a value the loader should have refused"
        );
    }
}
