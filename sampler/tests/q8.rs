//! The q8 dtype against expectations computed outside this crate: the fixture
//! `tests/data/model-q8.safetensors` (the shipped f32 model quantised by
//! `tests/data/make_q8_fixture.py`) and the Q16 logits numpy's integer simulation gives for
//! it (`tests/data/q8-expected.json`); then the loader's refusals of broken q8 files, and the
//! sampler, scorer and batched generator agreeing on a q8 model.

mod common;

use common::{FileSpec, TensorSpec};
use namegen_model::q8::{LOGIT_FRAC_BITS, bias_shift, requantize};
use namegen_model::{Context, Dtype, END_INDEX, Rng, TensorName, split};
use namegen_sampler::{
    BatchOptions, Forward, Kernels, Layout, LoadError, ModelView, Sampler, Settings,
    generate_batched, score,
};

const FIXTURE: &[u8] = include_bytes!("data/model-q8.safetensors");
const EXPECTED: &str = include_str!("data/q8-expected.json");

/// The fixture's expectations, as the script wrote them.
struct Expected {
    contexts: Vec<Vec<u8>>,
    logits: Vec<Vec<i64>>,
    checksum: u64,
}

fn expected() -> Expected {
    let json: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(json["logit_frac_bits"], u64::from(LOGIT_FRAC_BITS));
    let rows = |key: &str| -> Vec<Vec<i64>> {
        let rows = json[key].as_array().unwrap().iter();
        rows.map(|row| {
            let row = row.as_array().unwrap().iter();
            row.map(|v| v.as_i64().unwrap()).collect()
        })
        .collect()
    };
    let contexts = rows("contexts")
        .into_iter()
        .map(|c| c.into_iter().map(|s| u8::try_from(s).unwrap()).collect())
        .collect();
    Expected {
        contexts,
        logits: rows("logits"),
        checksum: json["all_contexts_checksum"].as_u64().unwrap(),
    }
}

/// The sampler's logits for `context` back in Q16 integers, exactly (they are `q * 2^-16`).
fn q16(forward: &mut Forward, view: &ModelView<'_>, context: &[u8]) -> Vec<i64> {
    let logits = forward.logits(view, context);
    let scale = f64::from(1u32 << LOGIT_FRAC_BITS);
    logits
        .iter()
        .map(|&z| {
            let q = f64::from(z) * scale;
            assert_eq!(q, q.trunc(), "logit {z} is not a whole number of 2^-16");
            q as i64
        })
        .collect()
}

/// Every kernel choice, the portable one first, each as parsed and with its weights packed
/// (AVX-VNNI reads only the packed copy).
fn with_each_kernel(view: &ModelView<'static>) -> Vec<ModelView<'static>> {
    [
        Kernels::Portable,
        Kernels::Avx2,
        Kernels::Avx2Vnni,
        Kernels::Avx512Vnni,
    ]
    .into_iter()
    .flat_map(|k| {
        let view = view.clone().with_kernels(k);
        let mut packed = view.clone();
        packed.pack_weights();
        [view, packed]
    })
    .collect()
}

#[test]
fn forward_gives_the_fixture_logits_exactly() {
    let view = ModelView::parse(FIXTURE).unwrap();
    assert_eq!(view.dtype(), Dtype::Q8);
    assert!(view.tanh_table().is_some());
    let expected = expected();
    assert!(expected.contexts.len() > 200);
    let mut forward = Forward::new();
    for view in with_each_kernel(&view) {
        for (context, want) in expected.contexts.iter().zip(&expected.logits) {
            let got = q16(&mut forward, &view, context);
            assert_eq!(&got, want, "context {context:?}, {:?}", view.kernels());
        }
    }
}

/// The script's checksum of every context's logits: the sum of `(c * V + v + 1) * logit`
/// over contexts `c` (the symbols as base-`V` digits, oldest first) and symbols `v`, modulo
/// 2^61 - 1.
#[test]
fn every_context_gives_the_fixture_checksum() {
    const PRIME: i128 = (1 << 61) - 1;
    let view = ModelView::parse(FIXTURE).unwrap();
    let vocab = view.config().vocab_size();
    let mut forward = Forward::new();
    let mut sum: i128 = 0;
    let mut weight: i128 = 1;
    for c in 0..vocab.pow(3) {
        let context = [c / (vocab * vocab), c / vocab % vocab, c % vocab].map(|s| s as u8);
        for q in q16(&mut forward, &view, &context) {
            sum = (sum + weight * i128::from(q)).rem_euclid(PRIME);
            weight += 1;
        }
    }
    assert_eq!(sum as u64, expected().checksum);
}

/// The validation loss of the q8 model on the names of the default split, through `score`:
/// what the fixture script prints with `--val` on `namegen split`'s validation file
/// (2.075812; the f32 model's is 2.07565), within the 1.5e-5 nats per symbol a q8 model's
/// log-likelihood may differ from the exact one, and the printed figure's rounding.
#[test]
fn validation_loss_is_the_scripts() {
    let view = ModelView::parse(FIXTURE).unwrap();
    let names_file = include_str!("../../data/names.txt");
    let names: Vec<&str> = names_file.lines().filter(|l| !l.is_empty()).collect();
    let mut order = vec![0u32; names.len()];
    let sizes = split(&mut order, 42).unwrap();
    let mut forward = Forward::<100>::new();
    let (mut log_likelihood, mut symbols) = (0.0, 0);
    for &i in &order[sizes.val] {
        let scored = score(&view, &mut forward, names[i as usize]).unwrap();
        log_likelihood += scored.log_likelihood;
        symbols += scored.symbols;
    }
    let loss = -log_likelihood / symbols as f64;
    assert!((loss - 2.075812).abs() < 1.5e-5 + 5e-7, "{loss}");
}

/// A q8 name's score is within the contract's 1.5e-5 nats per symbol of the exact log-softmax
/// of its logits (written out here in f64 on `Forward::logits`, the Q16 logits converted
/// exactly), with every kernel; names with likely and unlikely symbols.
#[test]
fn q8_scores_are_within_their_bound_of_the_exact_log_softmax() {
    let parsed = ModelView::parse(FIXTURE).unwrap();
    for view in with_each_kernel(&parsed) {
        let mut forward = Forward::<100>::new();
        for name in ["emma", "x", "zzqqxj", "olivia"] {
            let mut context = Context::start(view.config().block_size());
            let symbols = name.chars().map(|c| view.vocab().encode(c).unwrap());
            let (mut want, mut count) = (0.0f64, 0);
            for symbol in symbols.chain([END_INDEX]) {
                let z: Vec<f64> = forward
                    .logits(&view, context.ids())
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|&v| (v - max).exp()).sum();
                want += z[usize::from(symbol)] - max - sum.ln();
                context.push(symbol);
                count += 1;
            }
            let got = score(&view, &mut forward, name).unwrap().log_likelihood;
            let bound = 1.5e-5 * f64::from(count);
            assert!((got - want).abs() <= bound, "{name}: {got} against {want}");
        }
    }
}

/// `requantize` against the definition written out with 128-bit integers and explicit
/// rounding: `round(round(acc * 2^left * m / 2^31) / 2^right)`, both to nearest, the first
/// with ties toward +infinity (gemmlowp's nudge of `1 - 2^30` for negative products), the
/// second with ties away from zero.
#[test]
fn requantize_is_the_double_rounding_of_the_definition() {
    fn round_away(n: i128, d: i128) -> i128 {
        let q = (n.abs() + d / 2) / d;
        if n < 0 { -q } else { q }
    }
    fn round_up(n: i128, d: i128) -> i128 {
        (n + d / 2).div_euclid(d)
    }
    let mut rng = Rng::new(5);
    let mut cases = vec![
        (0, 1 << 30, 0),
        (1, 1 << 30, -1),
        (-1, 1 << 30, -1),
        (3, 1 << 30, -1),
        (-3, 1 << 30, -1),
        (i32::MAX, i32::MAX, 0),
        (i32::MIN, i32::MAX, 0),
        (i32::MIN + 1, 1, -31),
        (100, 1 << 30, 2),
        // Ties of the high multiplication: +0.5 and -0.5, +1.5 and -1.5.
        (1, 1 << 30, 0),
        (-1, 1 << 30, 0),
        (3, 1 << 30, 0),
        (-3, 1 << 30, 0),
    ];
    for _ in 0..100_000 {
        let shift = rng.below(62) as i8 - 31;
        let left = shift.max(0);
        // Small enough that the left shift keeps it within int32, as the loader guarantees.
        let acc = (rng.next_u32() as i32) >> (left as u32 + 1 + rng.below(31)).min(31);
        let multiplier = (rng.next_u32() >> 1).max(1) as i32;
        cases.push((acc, multiplier, shift));
    }
    for (acc, multiplier, shift) in cases {
        let (left, right) = (i128::from(shift.max(0)), i128::from(-shift.min(0)));
        let high = round_up((i128::from(acc) << left) * i128::from(multiplier), 1 << 31);
        let want = round_away(high, 1 << right);
        let got = requantize(acc, multiplier, shift);
        assert_eq!(i128::from(got), want, "{acc} {multiplier} {shift}");
    }
}

/// The fixture as a [`FileSpec`], to be broken one tensor at a time.
fn fixture_spec() -> FileSpec {
    FileSpec::read(FIXTURE)
}

fn broken(edit: impl Fn(&mut FileSpec)) -> LoadError {
    let mut spec = fixture_spec();
    edit(&mut spec);
    let bytes = spec.to_bytes();
    match ModelView::parse(&bytes) {
        Ok(_) => panic!("a broken fixture was accepted"),
        Err(e) => e,
    }
}

fn set_word(t: &mut TensorSpec, index: usize, word: i32) {
    t.data[4 * index..4 * index + 4].copy_from_slice(&word.to_le_bytes());
}

/// Sets the shift of row `index` of a `bias_shift` tensor: the word's low byte, its first.
fn set_shift(t: &mut TensorSpec, index: usize, shift: i8) {
    t.data[4 * index] = shift as u8;
}

#[test]
fn the_loader_refuses_broken_q8_models() {
    use LoadError as E;
    use TensorName as T;
    // The spec itself is the fixture: rewritten, it loads.
    ModelView::parse(&fixture_spec().to_bytes()).unwrap();

    let error = broken(|s| set_shift(s.tensor_mut("layers.3.bias_shift"), 17, 31));
    assert_eq!(
        error,
        E::ShiftOutOfRange {
            tensor: T::BiasShift(3),
            index: 17
        }
    );
    let error = broken(|s| set_shift(s.tensor_mut("layers.5.bias_shift"), 26, -32));
    assert_eq!(
        error,
        E::ShiftOutOfRange {
            tensor: T::BiasShift(5),
            index: 26
        }
    );
    let error = broken(|s| s.tensor_mut("layers.2.multiplier").data[80..82].fill(0));
    assert_eq!(
        error,
        E::MultiplierNotPositive {
            tensor: T::Multiplier(2),
            index: 40
        }
    );
    let error = broken(|s| s.tensor_mut("tanh.table").data[255] = 0x80);
    assert_eq!(
        error,
        E::QuantOutOfRange {
            tensor: T::TanhTable,
            index: 255
        }
    );
    let error = broken(|s| {
        let t = s.tensor_mut("layers.4.bias_shift");
        t.shape = vec![99];
        t.data.truncate(396);
    });
    assert!(
        matches!(
            error,
            E::TensorShape {
                tensor: T::BiasShift(4),
                ..
            }
        ),
        "{error:?}"
    );
    let error = broken(|s| s.tensor_mut("layers.0.weight").shape = vec![30, 100]);
    assert!(
        matches!(
            error,
            E::TensorShape {
                tensor: T::Weight(0),
                ..
            }
        ),
        "{error:?}"
    );
    let error = broken(|s| s.tensor_mut("layers.1.multiplier").dtype = "I32".into());
    assert!(
        matches!(
            error,
            E::TensorDtype {
                tensor: T::Multiplier(1),
                ..
            }
        ),
        "{error:?}"
    );

    // Overflow: a row of 127s in a layer of 100 inputs (100 * 127 * 128 = 1,625,600) and a
    // bias that takes the worst-case accumulator to 2^23, shifted left by 8: 2^31, one past
    // int32.
    let overflowing = |bias: i32| {
        move |s: &mut FileSpec| {
            s.tensor_mut("layers.2.weight").data[700..800].fill(127);
            let word = bias_shift(bias, 8).unwrap();
            set_word(s.tensor_mut("layers.2.bias_shift"), 7, word);
        }
    };
    let error = broken(overflowing((1 << 23) - 100 * 127 * 128));
    assert_eq!(
        error,
        E::IntegerOverflow {
            tensor: T::BiasShift(2),
            row: 7
        }
    );
    // One below: accepted (the bound is exact; a hidden layer's left shift only saturates
    // its codes).
    let mut spec = fixture_spec();
    overflowing((1 << 23) - 100 * 127 * 128 - 1)(&mut spec);
    ModelView::parse(&spec.to_bytes()).unwrap();
    // The logits' left shift of 1 or 2 is safe for the trained weights, not for a shift of 30.
    let error = broken(|s| set_shift(s.tensor_mut("layers.5.bias_shift"), 4, 30));
    assert_eq!(
        error,
        E::IntegerOverflow {
            tensor: T::BiasShift(5),
            row: 4
        }
    );
    // A logit that could exceed 2^24 (256 nats), which f32 would no longer hold exactly.
    let error = broken(|s| set_shift(s.tensor_mut("layers.5.bias_shift"), 9, 10));
    assert_eq!(
        error,
        E::IntegerOverflow {
            tensor: T::Multiplier(5),
            row: 9
        }
    );
    // A hidden layer's large shift only saturates its codes: no bound on its output.
    let mut spec = fixture_spec();
    set_shift(spec.tensor_mut("layers.1.bias_shift"), 3, 0);
    ModelView::parse(&spec.to_bytes()).unwrap();
}

/// The fixture's per-row integers through the view's accessors: the `bias_shift` words and
/// multipliers decoded as `model/FORMAT.md` says, here from the file's bytes with plain
/// arithmetic.
#[test]
fn the_view_decodes_the_per_row_integers() {
    let view = ModelView::parse(FIXTURE).unwrap();
    let mut spec = fixture_spec();
    let mut negative_biases = 0;
    for (i, layer) in view.layers().enumerate() {
        let words = spec
            .tensor_mut(&format!("layers.{i}.bias_shift"))
            .data
            .clone();
        let multipliers = spec
            .tensor_mut(&format!("layers.{i}.multiplier"))
            .data
            .clone();
        let requant = &layer.requant;
        assert_eq!(requant.rows(), layer.weight.rows());
        for row in 0..requant.rows() {
            let word = &words[4 * row..4 * row + 4];
            let unsigned = u32::from_le_bytes(word.try_into().unwrap());
            let bias = i64::from(unsigned >> 8) - if unsigned >> 31 == 1 { 1 << 24 } else { 0 };
            let shift = i64::from(word[0]) - if word[0] >= 128 { 256 } else { 0 };
            let m = &multipliers[2 * row..2 * row + 2];
            let multiplier = (i64::from(m[0]) + 256 * i64::from(m[1])) * 65536;
            assert_eq!(i64::from(requant.bias(row)), bias);
            assert_eq!(i64::from(requant.shift(row)), shift);
            assert_eq!(i64::from(requant.multiplier(row)), multiplier);
            assert!((1 << 30..1 << 31).contains(&multiplier), "{multiplier}");
            negative_biases += usize::from(bias < 0);
        }
    }
    assert!(negative_biases > 100, "{negative_biases}");
}

#[test]
fn the_layout_views_the_same_model() {
    let view = ModelView::parse(FIXTURE).unwrap();
    let data: Vec<u8> = view.tensors().flat_map(|(_, b)| b.to_vec()).collect();
    let symbols = view.vocab().to_string();
    let layout = Layout {
        dtype: Dtype::Q8,
        symbols: &symbols,
        block_size: view.config().block_size(),
        embed_dim: view.config().embed_dim(),
        hidden: view.config().hidden(),
    };
    let rebuilt = ModelView::from_layout(&layout, &data).unwrap();
    assert_eq!(common::view_tensors(&rebuilt), common::view_tensors(&view));
    let expected = expected();
    let mut forward = Forward::new();
    for (context, want) in expected.contexts.iter().zip(&expected.logits) {
        assert_eq!(&q16(&mut forward, &rebuilt, context), want);
    }
}

#[test]
fn sampling_scoring_and_batching_agree() {
    let view = ModelView::parse(FIXTURE).unwrap();
    let settings = Settings {
        seed: 17,
        temperature: 0.9,
        top_k: 20,
        ..Settings::default()
    };
    let one_by_one: Vec<_> = Sampler::<100>::new(&view, settings)
        .unwrap()
        .take(300)
        .collect();
    let mut forward = Forward::<100>::new();
    for name in one_by_one.iter().filter(|n| !n.cut) {
        let scored = score(&view, &mut forward, &name.text).unwrap();
        assert_eq!(scored.log_likelihood, name.log_likelihood, "{}", name.text);
    }
    for view in with_each_kernel(&view) {
        let names: Vec<_> = Sampler::<100>::new(&view, settings)
            .unwrap()
            .take(300)
            .collect();
        assert_eq!(names, one_by_one, "{:?}", view.kernels());
        for (batch, cache_bytes) in [(1, 0), (64, 0), (256, 1 << 20)] {
            let options = BatchOptions {
                batch,
                cache_bytes,
                ..BatchOptions::new(300)
            };
            let batched = generate_batched(&view, &settings, &options).unwrap();
            assert_eq!(batched, one_by_one, "{:?} batch {batch}", view.kernels());
        }
    }
    // Names, not noise: mostly short and made of the model's letters.
    let ended = one_by_one
        .iter()
        .filter(|n| !n.cut && n.chars <= 12)
        .count();
    assert!(ended > 280, "{ended}");
}
