//! The forward pass, sampling and scoring against independent f64 computations.

mod common;

use common::FileSpec;
use namegen_model::reference::{Folded, cross_entropy, scratch_len};
use namegen_model::vocab::VocabError;
use namegen_model::{Context, Dtype, ModelConfig, Rng, windows};
use namegen_sampler::tanh;
use namegen_sampler::{
    BatchOptions, Forward, ModelView, Name, SampleError, Sampler, Settings, generate_batched, score,
};
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The folded model's numbers as f64, decoded here from the spec's bytes (not by the sampler).
struct Reference {
    config: ModelConfig,
    embedding: Vec<f64>,
    weights: Vec<Vec<f64>>,
    biases: Vec<Vec<f64>>,
}

impl Reference {
    fn new(spec: &FileSpec, config: ModelConfig) -> Self {
        let values = |name: &str| -> Vec<f64> {
            let t = spec.tensors.iter().find(|t| t.name == name).unwrap();
            t.stored()
        };
        let matrix = |weight: &str, scale: &str| {
            let mut w = values(weight);
            if spec.tensors.iter().any(|t| t.name == scale) {
                let s = values(scale);
                let cols = w.len() / s.len();
                w.iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v *= s[i / cols]);
            }
            w
        };
        let n = config.n_layers();
        Self {
            config,
            embedding: matrix("emb.weight", "emb.scale"),
            weights: (0..n)
                .map(|i| matrix(&format!("layers.{i}.weight"), &format!("layers.{i}.scale")))
                .collect(),
            biases: (0..n)
                .map(|i| values(&format!("layers.{i}.bias")))
                .collect(),
        }
    }

    fn logits(&self, context: &[u8]) -> Vec<f64> {
        let w: Vec<&[f64]> = self.weights.iter().map(Vec::as_slice).collect();
        let b: Vec<&[f64]> = self.biases.iter().map(Vec::as_slice).collect();
        let model = Folded {
            config: self.config,
            embedding: &self.embedding,
            weights: &w,
            biases: &b,
        };
        let mut out = vec![0.0; self.config.vocab_size()];
        model
            .logits(context, &mut vec![0.0; scratch_len(&self.config)], &mut out)
            .unwrap();
        out
    }
}

const VOCAB: &str = ".abcdefghij";

/// Scales every Linear weight to a trained network's size (std about 1.5 / sqrt(fan_in), as
/// makemore's 5/3 gain gives), so that rounding is not amplified sixfold layer by layer as it
/// is with the spec's unit-scale random weights.
fn tame(mut spec: FileSpec) -> FileSpec {
    for t in spec
        .tensors
        .iter_mut()
        .filter(|t| t.name.starts_with("layers.") && t.shape.len() == 2)
    {
        let gain = 3.0 / (t.shape[1] as f64).sqrt();
        let quantized = t.dtype == "I8";
        if quantized {
            continue;
        }
        t.data = match t.dtype.as_str() {
            "F32" => t
                .data
                .chunks(4)
                .flat_map(|b| {
                    ((f32::from_le_bytes(b.try_into().unwrap()) as f64 * gain) as f32).to_le_bytes()
                })
                .collect(),
            _ => t
                .data
                .chunks(2)
                .flat_map(|b| {
                    half::f16::from_f64(half::f16::from_le_bytes([b[0], b[1]]).to_f64() * gain)
                        .to_le_bytes()
                })
                .collect(),
        };
    }
    let i8_gain = |name: &str| name.starts_with("layers.") && name.ends_with(".scale");
    let fan_in: Vec<(String, u64)> = spec
        .tensors
        .iter()
        .filter(|t| t.dtype == "I8" && t.name.starts_with("layers."))
        .map(|t| (t.name.replace("weight", "scale"), t.shape[1]))
        .collect();
    for t in spec.tensors.iter_mut().filter(|t| i8_gain(&t.name)) {
        let cols = fan_in.iter().find(|(n, _)| *n == t.name).unwrap().1;
        // q is uniform in -127..=127 (std about 73): bring q * scale to about 1.5 / sqrt(fan_in).
        let gain = 1.5 / (cols as f64).sqrt() / 73.0;
        t.data = t
            .data
            .chunks(4)
            .flat_map(|b| {
                ((f32::from_le_bytes(b.try_into().unwrap()) as f64 * gain) as f32).to_le_bytes()
            })
            .collect();
    }
    spec
}

fn model_spec(dtype: Dtype, seed: u64) -> (FileSpec, Vec<u8>) {
    let spec = FileSpec::folded_with(3, 4, &[16, 16], VOCAB, dtype, seed);
    let bytes = spec.to_bytes();
    (spec, bytes)
}

#[test]
fn forward_matches_the_f64_reference_for_every_dtype() {
    for dtype in Dtype::FLOAT {
        for (block, embed, hidden, vocab) in [
            (3, 4, vec![16, 16], VOCAB),
            (3, 10, vec![100; 5], ".abcdefghijklmnopqrstuvwxyz"),
        ] {
            let spec = tame(FileSpec::folded_with(
                block, embed, &hidden, vocab, dtype, 5,
            ));
            let bytes = spec.to_bytes();
            let view = ModelView::parse(&bytes).unwrap();
            let reference = Reference::new(&spec, *view.config());
            let mut forward = Forward::<100>::new();
            let mut rng = Rng::new(1);
            let mut context = Context::start(block);
            for _ in 0..300 {
                let expected = reference.logits(context.ids());
                let got = forward.logits(&view, context.ids());
                for (g, e) in got.iter().zip(&expected) {
                    let tolerance = 1e-5 * e.abs().max(1.0);
                    assert!(
                        (f64::from(*g) - e).abs() <= tolerance,
                        "{dtype}: {g} vs {e}"
                    );
                }
                context.push(rng.below(view.config().vocab_size() as u32) as u8);
            }
        }
    }
}

/// The next-symbol distribution the documentation promises, computed independently in f64.
fn expected_distribution(logits: &[f64], temperature: f64, top_k: usize, top_p: f64) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let mut p: Vec<f64> = logits
        .iter()
        .map(|l| ((l - max) / temperature).exp())
        .collect();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].partial_cmp(&p[a]).unwrap().then(a.cmp(&b)));
    if top_k > 0 {
        order[top_k..].iter().for_each(|&i| p[i] = 0.0);
    }
    let total: f64 = p.iter().sum();
    let mut mass = 0.0;
    for &i in &order {
        let before = mass;
        mass += p[i];
        if before >= top_p * total {
            p[i] = 0.0;
        }
    }
    let total: f64 = p.iter().sum();
    p.iter().map(|v| v / total).collect()
}

/// Pearson's chi-square of observed counts against probabilities, with sparse cells merged,
/// and the 0.1 % critical value of its degrees of freedom (Wilson-Hilferty).
fn chi_square(counts: &[usize], p: &[f64]) -> (f64, f64) {
    let n: usize = counts.iter().sum();
    let (mut stat, mut cells) = (0.0, 0);
    let (mut pooled_o, mut pooled_e) = (0.0, 0.0);
    for (&c, &q) in counts.iter().zip(p) {
        let e = q * n as f64;
        if q == 0.0 {
            assert_eq!(c, 0, "a symbol with probability 0 was drawn");
        } else if e < 5.0 {
            pooled_o += c as f64;
            pooled_e += e;
        } else {
            stat += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    if pooled_e > 0.0 {
        stat += (pooled_o - pooled_e).powi(2) / pooled_e.max(1e-9);
        cells += 1;
    }
    let df = (cells - 1).max(1) as f64;
    let z = 3.09; // one-sided 0.1 %
    let critical = df * (1.0 - 2.0 / (9.0 * df) + z * (2.0 / (9.0 * df)).sqrt()).powi(3);
    (stat, critical)
}

/// The f32 draw on a random f32 model, and the integer draw on the q8 fixture (whose f32
/// logits are its Q16 ones, exactly), against the same f64 distribution.
#[test]
fn first_symbol_frequencies_match_the_model() {
    let (_, bytes) = model_spec(Dtype::F32, 11);
    let q8 = include_bytes!("data/model-q8.safetensors");
    for bytes in [&bytes[..], q8] {
        first_symbol_frequencies_match(&ModelView::parse(bytes).unwrap());
    }
}

fn first_symbol_frequencies_match(view: &ModelView<'_>) {
    let logits: Vec<f64> = Forward::<100>::new()
        .logits(view, &[0, 0, 0])
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let cases = [
        (1.0, 0, 1.0),
        (0.5, 0, 1.0),
        (1.0, 3, 1.0),
        (1.0, 0, 0.7),
        (0.8, 4, 0.9),
    ];
    let first_symbol = |name: Name| {
        let symbol = name
            .text
            .chars()
            .next()
            .map_or(0, |c| view.vocab().encode(c).unwrap());
        usize::from(symbol)
    };
    for (temperature, top_k, top_p) in cases {
        let settings = Settings {
            temperature,
            top_k,
            top_p,
            seed: 3,
            min_len: 0,
            max_len: 1,
            ..Settings::default()
        };
        let p = expected_distribution(&logits, f64::from(temperature), top_k, f64::from(top_p));
        let mut sampler = Sampler::<100>::new(view, settings).unwrap();
        // The seeded list, and names drawn from a caller's generator: another algorithm
        // (PCG-XSL-RR 128/64, rand's `Pcg64Mcg`) through `rand_core`.
        let mut callers = Pcg64Mcg::seed_from_u64(5);
        for (path, names) in [
            ("seeded", sampler.by_ref().take(20_000).collect::<Vec<_>>()),
            (
                "caller's rng",
                (0..20_000)
                    .map(|_| sampler.name_from(&mut callers))
                    .collect(),
            ),
        ] {
            let mut counts = vec![0usize; view.config().vocab_size()];
            for name in names {
                counts[first_symbol(name)] += 1;
            }
            let (stat, critical) = chi_square(&counts, &p);
            assert!(
                stat < critical,
                "{} {path} T={temperature} k={top_k} p={top_p}: chi2 {stat:.1} >= {critical:.1}\n{counts:?}\n{p:?}",
                view.dtype()
            );
        }
    }
}

#[test]
fn a_callers_pcg32_stream_gives_the_seeded_name() {
    // `name_from` draws exactly as `name_at` does, from whatever generator it is given: name k
    // of seed s is a draw from `Rng::with_stream(s, k)`, passed through `rand_core`.
    for dtype in Dtype::FLOAT {
        let (_, bytes) = model_spec(dtype, 4);
        let view = ModelView::parse(&bytes).unwrap();
        for settings in [
            Settings {
                seed: 21,
                ..Settings::default()
            },
            Settings {
                seed: 9,
                temperature: 0.7,
                top_k: 5,
                top_p: 0.9,
                prefix: "ca",
                min_len: 4,
                max_len: 9,
            },
        ] {
            let mut sampler = Sampler::<100>::new(&view, settings).unwrap();
            let seeded: Vec<_> = sampler.by_ref().take(50).collect();
            let drawn: Vec<_> = (0..50)
                .map(|k| sampler.name_from(&mut Rng::with_stream(settings.seed, k)))
                .collect();
            assert_eq!(drawn, seeded, "{dtype}");
        }
    }
}

#[test]
fn greedy_follows_the_largest_logit_and_ignores_the_seed() {
    let (spec, bytes) = model_spec(Dtype::F32, 2);
    let view = ModelView::parse(&bytes).unwrap();
    let reference = Reference::new(&spec, *view.config());
    let settings = |seed| Settings {
        temperature: 0.0,
        seed,
        max_len: 12,
        ..Settings::default()
    };
    let a: Vec<_> = Sampler::<100>::new(&view, settings(1))
        .unwrap()
        .take(3)
        .collect();
    let b: Vec<_> = Sampler::<100>::new(&view, settings(99))
        .unwrap()
        .take(3)
        .collect();
    assert_eq!(a, b);
    assert!(
        a.windows(2).all(|w| w[0] == w[1]),
        "greedy names are all the same"
    );
    // Follow the argmax by hand with the f64 reference (the end symbol masked for 1 char).
    let mut context = Context::start(3);
    let mut expected = String::new();
    for step in 0..12 {
        let l = reference.logits(context.ids());
        let first = usize::from(step < 1);
        let best = (first..l.len()).fold(first, |b, i| if l[i] > l[b] { i } else { b });
        if best == 0 {
            break;
        }
        expected.push(view.vocab().decode(best as u8).unwrap());
        context.push(best as u8);
    }
    assert_eq!(a[0].text.as_str(), expected);
}

#[test]
fn prefix_and_length_controls() {
    let (_, bytes) = model_spec(Dtype::F32, 4);
    let view = ModelView::parse(&bytes).unwrap();
    let base = Settings {
        seed: 5,
        ..Settings::default()
    };
    for name in Sampler::<100>::new(
        &view,
        Settings {
            prefix: "ab",
            ..base
        },
    )
    .unwrap()
    .take(200)
    {
        assert!(name.text.starts_with("ab"), "{}", name.text);
    }
    for name in Sampler::<100>::new(&view, Settings { max_len: 2, ..base })
        .unwrap()
        .take(500)
    {
        assert!(name.chars <= 2 && name.text.chars().count() == name.chars);
        assert_eq!(name.cut, name.chars == 2);
    }
    let long: Vec<_> = Sampler::<100>::new(
        &view,
        Settings {
            min_len: 4,
            max_len: 6,
            ..base
        },
    )
    .unwrap()
    .take(500)
    .collect();
    assert!(long.iter().all(|n| n.chars >= 4));
    assert!(long.iter().any(|n| !n.cut), "some names end by themselves");

    let error = |s| Sampler::<100>::new(&view, s).unwrap_err();
    assert_eq!(
        error(Settings {
            prefix: "ax",
            ..base
        }),
        SampleError::Prefix(VocabError::UnknownChar('x'))
    );
    assert_eq!(
        error(Settings {
            prefix: "a.",
            ..base
        }),
        SampleError::Prefix(VocabError::TerminatorInName)
    );
    assert_eq!(
        error(Settings {
            prefix: "abc",
            max_len: 2,
            ..base
        }),
        SampleError::PrefixTooLong
    );
    assert_eq!(
        error(Settings {
            temperature: -1.0,
            ..base
        }),
        SampleError::Temperature
    );
    assert_eq!(
        error(Settings {
            temperature: f32::NAN,
            ..base
        }),
        SampleError::Temperature
    );
    assert_eq!(error(Settings { top_p: 0.0, ..base }), SampleError::TopP);
    assert_eq!(error(Settings { top_p: 1.5, ..base }), SampleError::TopP);
    assert_eq!(
        error(Settings {
            min_len: 5,
            max_len: 4,
            ..base
        }),
        SampleError::Lengths
    );
    assert_eq!(error(Settings { max_len: 0, ..base }), SampleError::Lengths);
    assert_eq!(
        error(Settings {
            max_len: 129,
            ..base
        }),
        SampleError::Lengths,
        "129 one-byte chars overflow 128 bytes"
    );
    assert!(matches!(
        Sampler::<8>::new(&view, base),
        Err(SampleError::TooWide(_))
    ));
}

#[test]
fn scores_are_reference_log_likelihoods_and_match_sampled_names() {
    for dtype in Dtype::FLOAT {
        let (spec, bytes) = model_spec(dtype, 6);
        let view = ModelView::parse(&bytes).unwrap();
        let reference = Reference::new(&spec, *view.config());
        let mut forward = Forward::<100>::new();
        for name in ["a", "jade", "abcdefghij", ""] {
            let mut encoded = [0u8; 16];
            let n = view.vocab().encode_name(name, &mut encoded).unwrap();
            let expected: f64 = windows(&encoded[..n], 3)
                .map(|(c, t)| -cross_entropy(&reference.logits(c.ids()), t))
                .sum();
            let got = score(&view, &mut forward, name).unwrap();
            assert_eq!(got.symbols, name.len() + 1);
            assert!(
                (got.log_likelihood - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "{dtype} {name}: {got:?} vs {expected}"
            );
            let ppl = (-expected / (n + 1) as f64).exp();
            assert!((got.perplexity() - ppl).abs() < 1e-3 * ppl);
        }
        assert_eq!(
            score(&view, &mut forward, "aq").unwrap_err().to_string(),
            "character 'q' is not in the model's vocabulary"
        );
        let settings = Settings {
            seed: 9,
            temperature: 0.7,
            top_k: 5,
            ..Settings::default()
        };
        for name in Sampler::<100>::new(&view, settings)
            .unwrap()
            .take(50)
            .filter(|n| !n.cut)
        {
            let scored = score(&view, &mut forward, &name.text).unwrap();
            assert_eq!(scored.log_likelihood, name.log_likelihood, "{}", name.text);
        }
    }
}

#[test]
fn batched_generation_gives_the_same_names() {
    for dtype in Dtype::FLOAT {
        let (_, bytes) = model_spec(dtype, 7);
        let view = ModelView::parse(&bytes).unwrap();
        let settings = Settings {
            seed: 13,
            temperature: 0.9,
            top_p: 0.95,
            prefix: "b",
            max_len: 10,
            ..Settings::default()
        };
        let one_by_one: Vec<_> = Sampler::<100>::new(&view, settings)
            .unwrap()
            .take(40)
            .collect();
        for batch in [1, 7, 64] {
            let options = BatchOptions {
                batch,
                ..BatchOptions::new(40)
            };
            assert_eq!(
                generate_batched(&view, &settings, &options).unwrap(),
                one_by_one,
                "{dtype} batch {batch}"
            );
            // No cache, a cache smaller than one step's contexts (emptied every step) and one
            // of a few steps' (emptied now and then): the same names.
            let vocab = view.config().vocab_size();
            for cache_bytes in [0, 4 * vocab * 3, 4 * vocab * 100] {
                let options = BatchOptions {
                    cache_bytes,
                    ..options
                };
                assert_eq!(
                    generate_batched(&view, &settings, &options).unwrap(),
                    one_by_one,
                    "{dtype} batch {batch} cache {cache_bytes}"
                );
            }
        }
        let mut sampler = Sampler::<100>::new(&view, settings).unwrap();
        let options = BatchOptions {
            first: 25,
            batch: 2,
            ..BatchOptions::new(3)
        };
        assert_eq!(
            generate_batched(&view, &settings, &options).unwrap(),
            vec![
                sampler.name_at(25),
                sampler.name_at(26),
                sampler.name_at(27)
            ]
        );
    }
}

#[test]
fn a_seed_names_the_same_list_and_another_seed_another() {
    let (_, bytes) = model_spec(Dtype::F16, 8);
    let view = ModelView::parse(&bytes).unwrap();
    let names = |seed| -> Vec<String> {
        Sampler::<100>::new(
            &view,
            Settings {
                seed,
                ..Settings::default()
            },
        )
        .unwrap()
        .take(30)
        .map(|n| n.text.to_string())
        .collect()
    };
    assert_eq!(names(1), names(1));
    assert_ne!(names(1), names(2));
}

/// The dot product in the order the sampler documents for every target: element `j` added to
/// partial sum `j % 8` in increasing `j`, the sums then combined as
/// `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`; written here from that description.
fn lane_order_dot(w: &[f32], x: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    for (j, (w, x)) in w.iter().zip(x).enumerate() {
        s[j % 8] += w * x;
    }
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

/// The forward pass step by step in plain scalar code, following the documented order:
/// each row's stored values times the input in [`lane_order_dot`]'s order, the i8 scale after
/// the sum, the bias, then [`tanh`]. Whatever the sampler runs (AVX2 on this host, 4-wide
/// SSE2, WASM or Cortex-M scalar code) must give exactly these bits.
fn scalar_logits(view: &ModelView<'_>, context: &[u8]) -> Vec<f32> {
    let dim = view.config().embed_dim();
    let mut x = vec![0.0f32; context.len() * dim];
    for (slot, &symbol) in x.chunks_exact_mut(dim).zip(context) {
        view.embedding().row_into(usize::from(symbol), slot);
    }
    let layers: Vec<_> = view.layers().collect();
    for (index, layer) in layers.iter().enumerate() {
        let mut row = vec![0.0f32; layer.weight.cols()];
        x = (0..layer.weight.rows())
            .map(|r| {
                layer.weight.row_raw_into(r, &mut row);
                let mut dot = lane_order_dot(&row, &x);
                if layer.weight.dtype() == Dtype::I8 {
                    dot *= layer.weight.scale(r);
                }
                let value = dot + layer.bias.get(r);
                if index + 1 < layers.len() {
                    tanh(value)
                } else {
                    value
                }
            })
            .collect();
    }
    x
}

#[test]
fn forward_is_bit_identical_to_the_documented_scalar_order() {
    for dtype in Dtype::FLOAT {
        for (block, embed, hidden, vocab) in [
            (3, 4, vec![16, 13], VOCAB),
            (3, 10, vec![100; 5], ".abcdefghijklmnopqrstuvwxyz"),
            // Inputs narrower than one 8-lane chunk, layers narrower than a block of 8 rows.
            (1, 5, vec![3, 8, 17], VOCAB),
            // Whole chunks only (8 and 24 inputs), and a single row past whole blocks.
            (2, 4, vec![24, 9], VOCAB),
        ] {
            let spec = tame(FileSpec::folded_with(
                block, embed, &hidden, vocab, dtype, 21,
            ));
            let bytes = spec.to_bytes();
            let view = ModelView::parse(&bytes).unwrap();
            // The host's copy of the weights in the AVX2 kernel's order, where it has one.
            let mut packed = view.clone();
            packed.pack_weights();
            let mut forward = Forward::<100>::new();
            let mut rng = Rng::new(4);
            let mut context = Context::start(block);
            for _ in 0..100 {
                let want = scalar_logits(&view, context.ids());
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                let got = forward.logits(&view, context.ids());
                assert_eq!(bits(got), bits(&want), "{dtype} {hidden:?}");
                let got = forward.logits(&packed, context.ids());
                assert_eq!(bits(got), bits(&want), "packed {dtype} {hidden:?}");
                context.push(rng.below(view.config().vocab_size() as u32) as u8);
            }
        }
    }
}

#[test]
fn non_ascii_names_count_characters_and_fit_their_buffer() {
    // ".azé😀": the widest symbol takes 4 bytes, so 32 characters fill the 128-byte name.
    let spec = tame(FileSpec::folded_with(
        3,
        4,
        &[16, 16],
        ".azé😀",
        Dtype::F32,
        3,
    ));
    let bytes = spec.to_bytes();
    let view = ModelView::parse(&bytes).unwrap();
    let settings = Settings {
        seed: 1,
        temperature: 2.0,
        min_len: 30,
        max_len: 32,
        prefix: "😀é",
        ..Settings::default()
    };
    let names: Vec<_> = Sampler::<100>::new(&view, settings)
        .unwrap()
        .take(200)
        .collect();
    for name in &names {
        assert_eq!(name.text.chars().count(), name.chars);
        assert!((30..=32).contains(&name.chars), "{}", name.text);
        assert!(name.text.starts_with("😀é"));
        assert_eq!(name.cut, name.chars == 32);
    }
    assert!(
        names
            .iter()
            .any(|n| n.text.contains('😀') && n.text.len() > n.chars)
    );
    assert_eq!(
        Sampler::<100>::new(
            &view,
            Settings {
                max_len: 33,
                ..settings
            }
        )
        .unwrap_err(),
        SampleError::Lengths,
        "33 characters of up to 4 bytes may overflow 128 bytes"
    );
}
