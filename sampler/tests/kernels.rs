//! Every choice of [`Kernels`] gives the same bits: logits, names (one by one and batched,
//! so also the draw's `expf` at temperatures other than 1) and scores of [`Kernels::Portable`]
//! against those of the kernels this host detects. Where the host detects none (no AVX2 and
//! F16C, another target) the two are the same code and the comparisons hold trivially.

mod common;

use common::FileSpec;
use namegen_model::{Context, Dtype, Rng};
use namegen_sampler::{
    BatchOptions, Forward, Kernels, ModelView, Sampler, Settings, generate_batched, score,
};

/// The shipped models, trained (realistic activations), and random ones of other shapes:
/// inputs narrower than one 8-lane chunk and layers narrower than a block of rows, then whole
/// chunks only and a single row past whole blocks.
fn models() -> Vec<(String, Vec<u8>)> {
    let mut models = Vec::new();
    for dtype in Dtype::ALL {
        let path = format!(
            "{}/../data/model-{}.safetensors",
            env!("CARGO_MANIFEST_DIR"),
            dtype.name()
        );
        models.push((path.clone(), std::fs::read(&path).unwrap()));
        for (block, embed, hidden) in [(1, 5, vec![3, 8, 17]), (2, 4, vec![24, 9])] {
            let spec = FileSpec::folded_with(block, embed, &hidden, ".abcdefghij", dtype, 5);
            models.push((format!("random {dtype} {hidden:?}"), spec.to_bytes()));
        }
    }
    models
}

/// `model` computed by the portable kernels, and by the detected ones: as parsed, and with
/// its weights packed for them.
fn views<'a>(model: &ModelView<'a>) -> [(&'static str, ModelView<'a>); 3] {
    let detected = model.clone().with_kernels(Kernels::detect());
    let mut packed = detected.clone();
    packed.pack_weights();
    [
        ("portable", model.clone().with_kernels(Kernels::Portable)),
        ("detected", detected),
        ("detected, packed", packed),
    ]
}

/// Settings that use every path of the draw: plain sampling (the temperature-1 weights reused),
/// other temperatures (the weights recomputed by the `expf` kernel), the end symbol masked,
/// top-k and top-p, and greedy.
fn settings() -> [Settings<'static>; 5] {
    [
        Settings {
            seed: 3,
            ..Settings::default()
        },
        Settings {
            seed: 4,
            temperature: 0.7,
            top_k: 5,
            ..Settings::default()
        },
        Settings {
            seed: 5,
            temperature: 1.6,
            top_p: 0.9,
            min_len: 4,
            max_len: 12,
            ..Settings::default()
        },
        Settings {
            seed: 6,
            temperature: 1.0,
            min_len: 3,
            prefix: "a",
            ..Settings::default()
        },
        Settings {
            temperature: 0.0,
            ..Settings::default()
        },
    ]
}

#[test]
fn a_view_takes_the_detected_kernels_and_any_it_is_given_that_the_cpu_runs() {
    let detected = Kernels::detect();
    assert_eq!(
        Kernels::detect(),
        detected,
        "detected once, the same answer"
    );
    for (name, bytes) in models() {
        let view = ModelView::parse(&bytes).unwrap();
        assert_eq!(view.kernels(), detected, "{name}");
        let portable = view.clone().with_kernels(Kernels::Portable);
        assert_eq!(portable.kernels(), Kernels::Portable, "{name}");
        // Asking for AVX2 gives it where the CPU runs it, the portable kernels elsewhere.
        assert_eq!(
            portable.with_kernels(Kernels::Avx2).kernels(),
            detected,
            "{name}"
        );
    }
}

#[test]
fn logits_are_the_same_bits_with_every_kernel() {
    for (name, bytes) in models() {
        let model = ModelView::parse(&bytes).unwrap();
        let views = views(&model);
        let (block, vocab) = (model.config().block_size(), model.config().vocab_size());
        let mut forward = Forward::<100>::new();
        let mut rng = Rng::new(11);
        let mut context = Context::start(block);
        for _ in 0..300 {
            let bits = |view: &ModelView<'_>, forward: &mut Forward<100>| -> Vec<u32> {
                let logits = forward.logits(view, context.ids());
                logits.iter().map(|v| v.to_bits()).collect()
            };
            let want = bits(&views[0].1, &mut forward);
            for (kernels, view) in &views[1..] {
                assert_eq!(bits(view, &mut forward), want, "{name}, {kernels}");
            }
            context.push(rng.below(vocab as u32) as u8);
        }
    }
}

#[test]
fn names_and_scores_are_the_same_bits_with_every_kernel() {
    for (name, bytes) in models() {
        let model = ModelView::parse(&bytes).unwrap();
        let views = views(&model);
        for settings in settings() {
            let names = |view: &ModelView<'_>| -> Vec<_> {
                Sampler::<100>::new(view, settings)
                    .unwrap()
                    .take(60)
                    .collect()
            };
            let want = names(&views[0].1);
            for (kernels, view) in &views[1..] {
                // `Name`'s equality compares the log-likelihoods too, as f64 numbers.
                assert_eq!(names(view), want, "{name}, {kernels}, {settings:?}");
            }
            let mut forward = Forward::<100>::new();
            for text in want.iter().filter(|n| !n.cut).map(|n| n.text.as_str()) {
                let scores = views.each_ref().map(|(_, view)| {
                    score(view, &mut forward, text)
                        .unwrap()
                        .log_likelihood
                        .to_bits()
                });
                assert!(
                    scores.iter().all(|&s| s == scores[0]),
                    "{name}, {text}: {scores:?}"
                );
            }
        }
    }
}

#[test]
fn batched_names_are_the_same_bits_with_every_kernel() {
    for (name, bytes) in models() {
        let model = ModelView::parse(&bytes).unwrap();
        let views = views(&model);
        for settings in settings() {
            for options in [
                BatchOptions::new(80),
                BatchOptions {
                    first: 7,
                    batch: 20,
                    cache_bytes: 0,
                    ..BatchOptions::new(50)
                },
            ] {
                let want = generate_batched(&views[0].1, &settings, &options).unwrap();
                for (kernels, view) in &views[1..] {
                    let got = generate_batched(view, &settings, &options).unwrap();
                    assert_eq!(got, want, "{name}, {kernels}, {settings:?}, {options:?}");
                }
                // And the portable batched names are the portable unbatched ones.
                let mut sampler = Sampler::<100>::new(&views[0].1, settings).unwrap();
                let first = options.first;
                let one_by_one: Vec<_> = (first..first + options.count as u64)
                    .map(|index| sampler.name_at(index))
                    .collect();
                assert_eq!(want, one_by_one, "{name}, {settings:?}, {options:?}");
            }
        }
    }
}
