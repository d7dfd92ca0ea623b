//! Every choice of [`Kernels`] gives the same bits: logits, names (one by one and batched,
//! so also the draw's `expf` at temperatures other than 1) and scores of [`Kernels::Portable`]
//! against those of every other choice this host runs ([`Kernels::runs_here`]; the first test
//! prints which). Where it runs none (no AVX2 and F16C, another target) only the portable
//! kernels run and there is nothing to compare.

mod common;

use common::FileSpec;
use namegen_model::q8::{MAX_BIAS, MIN_BIAS, bias_shift, requantize, widen_multiplier};
use namegen_model::{Context, Dtype, Rng};
use namegen_sampler::{
    BatchOptions, Forward, Kernels, ModelView, Sampler, Settings, generate_batched, score,
};

/// The shipped models, trained (realistic activations), and random ones of other shapes:
/// inputs narrower than one 8-lane chunk and layers narrower than a block of rows, then whole
/// chunks only and a single row past whole blocks; and q8 models with extreme codes
/// ([`extreme_q8`]).
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
    // q8's kernel reads 32 inputs at a time and requantises 8 rows at a time: inputs of one
    // chunk and a byte (33), of exactly two chunks (64) and of one, a single row, and rows
    // past whole blocks, and of 100, two of the packed kernels' panels of 7 blocks (wider
    // layers are in `wide_q8_models_give_the_same_logits_with_every_kernel`).
    for (seed, (block, embed, hidden)) in [(3, 11, vec![64, 1, 40]), (2, 16, vec![100, 7])]
        .into_iter()
        .enumerate()
    {
        let spec = extreme_q8(block, embed, &hidden, ".abcdefghij", seed as u64);
        models.push((format!("extreme q8 {hidden:?}"), spec.to_bytes()));
    }
    models
}

/// A random q8 model the loader accepts, with the most extreme values it allows: codes of
/// +-127 (the format's range is symmetric) for a third of the embedding, the weights and the
/// `tanh` table each; any multiplier; for every row any bias the format stores (for half of
/// the rows one of its extremes, -2^23 and 2^23 - 1: the accumulator bound always leaves room
/// for them) and a shift from a right shift by 31 up to the largest left shift the bound
/// allows (hidden layers) or down from there until the logit bound holds (the output layer).
fn extreme_q8(block: usize, embed: usize, hidden: &[usize], vocab: &str, seed: u64) -> FileSpec {
    let mut spec = FileSpec::folded_with(block, embed, hidden, vocab, Dtype::Q8, seed);
    let mut rng = Rng::new(seed + 100);
    let code = |rng: &mut Rng| {
        let code: i8 = match rng.below(6) {
            0 => 127,
            1 => -127,
            _ => (rng.below(255) as i32 - 127) as i8,
        };
        code as u8
    };
    for name in ["emb.weight", "tanh.table"] {
        for byte in &mut spec.tensor_mut(name).data {
            *byte = code(&mut rng);
        }
    }
    let layers = hidden.len() + 1;
    for layer in 0..layers {
        let weight = spec.tensor_mut(&format!("layers.{layer}.weight"));
        let cols = weight.shape[1] as usize;
        for byte in &mut weight.data {
            *byte = code(&mut rng);
        }
        let bounds: Vec<u64> = weight
            .data
            .chunks(cols)
            .map(|row| {
                row.iter()
                    .map(|&w| u64::from((w as i8).unsigned_abs()))
                    .sum::<u64>()
                    * 128
            })
            .collect();
        let mut rows = Vec::new();
        for weights in bounds {
            let bias = match rng.below(4) {
                0 => MAX_BIAS,
                1 => MIN_BIAS,
                _ => (rng.next_u32() as i32) >> 8,
            };
            let bound = weights + u64::from(bias.unsigned_abs());
            let multiplier = rng.below(i16::MAX as u32) as i16 + 1;
            let widest = (i32::MAX as u64 / bound.max(1)).ilog2().min(30) as i8;
            let mut shift = rng.below(32 + widest as u32) as i8 - 31;
            if layer == layers - 1 {
                let logit = |shift| {
                    requantize(bound as i32, widen_multiplier(multiplier), shift).unsigned_abs()
                };
                while logit(shift) > 1 << 24 {
                    shift -= 1;
                }
            }
            rows.push((bias_shift(bias, shift).unwrap(), multiplier));
        }
        spec.tensor_mut(&format!("layers.{layer}.bias_shift")).data =
            rows.iter().flat_map(|r| r.0.to_le_bytes()).collect();
        spec.tensor_mut(&format!("layers.{layer}.multiplier")).data =
            rows.iter().flat_map(|r| r.1.to_le_bytes()).collect();
    }
    ModelView::parse(&spec.to_bytes()).expect("within the loader's bounds");
    spec
}

/// Every choice of [`Kernels`].
const KERNELS: [Kernels; 4] = [
    Kernels::Portable,
    Kernels::Avx2,
    Kernels::Avx2Vnni,
    Kernels::Avx512Vnni,
];

/// `model` computed by the portable kernels, then by every other choice this CPU runs
/// ([`KERNELS`]): as parsed, and with its weights packed for them.
fn views<'a>(model: &ModelView<'a>) -> Vec<(String, ModelView<'a>)> {
    let mut views = vec![(
        "portable".into(),
        model.clone().with_kernels(Kernels::Portable),
    )];
    for kernels in KERNELS[1..].iter().filter(|k| k.runs_here()) {
        let view = model.clone().with_kernels(*kernels);
        let mut packed = view.clone();
        packed.pack_weights();
        views.push((format!("{kernels:?}"), view));
        views.push((format!("{kernels:?}, packed"), packed));
    }
    views
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
    assert!(detected.runs_here() && Kernels::Portable.runs_here());
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c");
        assert_eq!(Kernels::Avx2.runs_here(), avx2);
        let vnni = avx2 && is_x86_feature_detected!("avxvnni");
        assert_eq!(Kernels::Avx2Vnni.runs_here(), vnni);
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vbmi");
        let avx512 = avx2 && avx512;
        assert_eq!(Kernels::Avx512Vnni.runs_here(), avx512);
    }
    let compared: Vec<_> = KERNELS.iter().filter(|k| k.runs_here()).collect();
    println!("this CPU runs, and the tests compare, {compared:?}");
    for (name, bytes) in models() {
        let view = ModelView::parse(&bytes).unwrap();
        assert_eq!(view.kernels(), detected, "{name}");
        for kernels in KERNELS {
            // Asking for kernels gives them where the CPU runs them, the portable ones elsewhere.
            let want = if kernels.runs_here() {
                kernels
            } else {
                Kernels::Portable
            };
            assert_eq!(view.clone().with_kernels(kernels).kernels(), want, "{name}");
        }
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
                let scores: Vec<_> = views
                    .iter()
                    .map(|(_, view)| {
                        score(view, &mut forward, text)
                            .unwrap()
                            .log_likelihood
                            .to_bits()
                    })
                    .collect();
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

/// Every context of every q8 model, the shipped one's 19,683 among them: the integer
/// network's logits of the portable code and of every other kernel this CPU runs, bit for bit.
#[test]
fn every_q8_context_gives_the_same_logits_with_every_kernel() {
    for (name, bytes) in models() {
        let model = ModelView::parse(&bytes).unwrap();
        if model.dtype() != Dtype::Q8 {
            continue;
        }
        assert_every_context_agrees::<100>(&model, &name);
    }
}

/// Asserts that every context of `model` gives the portable kernel's logits, bit for bit, with
/// every other kernel this CPU runs, in place and packed ([`views`]), through buffers of `W`.
fn assert_every_context_agrees<const W: usize>(model: &ModelView<'_>, name: &str) {
    let views = views(model);
    let (block, vocab) = (model.config().block_size(), model.config().vocab_size());
    let mut forward = Forward::<W>::new();
    for c in 0..vocab.pow(block as u32) {
        let context: Vec<u8> = (0..block)
            .map(|i| (c / vocab.pow((block - 1 - i) as u32) % vocab) as u8)
            .collect();
        let mut bits = |view: &ModelView<'_>| -> Vec<u32> {
            let logits = forward.logits(view, &context);
            logits.iter().map(|v| v.to_bits()).collect()
        };
        let want = bits(&views[0].1);
        for (kernels, view) in &views[1..] {
            assert_eq!(bits(view), want, "{name}, {kernels}, {context:?}");
        }
    }
}

/// q8 layers wider than one panel of the packed kernels (7 blocks of 8 rows, 56 rows): 230
/// rows (four whole panels and one of a block) and 57 (a panel and a single row past it),
/// every context, with buffers wide enough for them.
#[test]
fn wide_q8_models_give_the_same_logits_with_every_kernel() {
    let spec = extreme_q8(2, 16, &[230, 57], ".abcdefghij", 9);
    let bytes = spec.to_bytes();
    let model = ModelView::parse(&bytes).unwrap();
    assert_every_context_agrees::<256>(&model, "230 and 57 rows");
}
