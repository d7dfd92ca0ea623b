//! Sampling speed of the default architecture (3 x 10 embedding, 5 x 100 hidden, 27 symbols)
//! with random weights of a trained network's size, for each stored dtype, single thread:
//! - `unbatched` draws 256 names one by one with a [`Sampler`] over a view whose weights
//!   [`ModelView::pack_weights`] copied into the AVX2 kernel's order (what a host runs one
//!   name at a time);
//! - `unbatched-in-place` draws the same names from the view as parsed, its weights read where
//!   they are in the file, as a device reads them from flash; `unbatched-portable` draws them
//!   with [`Kernels::Portable`], the reference the host's kernels are compared with; for q8,
//!   `unbatched-avx2` draws them with [`Kernels::Avx2`], what a CPU without AVX-VNNI and
//!   AVX-512 runs;
//! - `unbatched-forwards` runs only the forward passes of `unbatched` (packed weights), back
//!   to back, on the contexts its names were drawn after (with [`Forward::logits`], which
//!   converts a q8 model's 27 logits to f32 besides), counted in the same symbols: what
//!   `unbatched` costs beyond it is the draw, the log-likelihood and the bookkeeping;
//! - `batched` draws the same 256 names with [`generate_batched`] and the default
//!   [`BatchOptions`] ([`namegen_sampler::DEFAULT_BATCH`] in flight), its logits cache on
//!   (what `namegen sample` runs);
//! - `batched-compute` is the same without the cache: every symbol of every name runs the
//!   model, the compute-only speed;
//! - `batched-1024` and `batched-4096` draw 1,024 and 4,096 names with the cache, whose hit
//!   rate grows with the number of names in one call (every name starts from the same
//!   context, and common prefixes repeat); `namegen sample -n 1000` makes one call of 1,000;
//! - `forward` is one forward pass (packed weights), `forward-in-place` the same on the view as
//!   parsed, `forward-portable` with the portable kernel, and `stream` a bare loop reading every
//!   byte of the model's tensors once: the memory limit a forward pass is compared with;
//! - `matvec` is one 100 x 100 layer's matrix-vector product (the portable code, no AVX).
//!
//! The group `trained-f32` runs the sampling and forward cases on the shipped model, trained on
//! `data/names.txt`, whose names repeat contexts more than random weights do, and `trained-q8`
//! on the same model quantised to q8 (`data/model-q8.safetensors`, integer-only inference; q8
//! has no random model here: it needs a calibrated quantisation, which `namegen export` makes).
//!
//! Throughput is counted in symbols drawn, the end symbol included (one forward pass each
//! without the cache), the same unit as the PyTorch reference's 6,400 characters/s; names/s is
//! that figure divided by the mean symbols per name. Each group first prints the mean symbols
//! per name and the share of symbols whose context the cache finds, for 256, 1,024 and 4,096
//! names.
//!
//! Run with `cargo bench -p namegen-sampler --bench sample`.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use namegen_model::format::{self, FOLDED_FORMAT, FORMAT_VERSION, keys};
use namegen_model::{Context, Dtype, ModelConfig, Rng, TensorName};
use namegen_sampler::{
    BatchOptions, DEFAULT_CACHE_BYTES, Forward, Kernels, ModelView, Name, Sampler, Settings,
    generate_batched,
};
use safetensors::tensor::TensorView;

const VOCAB: &str = ".abcdefghijklmnopqrstuvwxyz";
const NAMES: usize = 256;
const MANY_NAMES: usize = 4096;
/// The shipped model, trained on `data/names.txt`: the cache's hit rate on real names.
const TRAINED: &[u8] = include_bytes!("../../data/model-f32.safetensors");
/// The shipped model in q8, the same network in integers.
const TRAINED_Q8: &[u8] = include_bytes!("../../data/model-q8.safetensors");

/// A folded model file of the default config with random weights of a trained network's size
/// (standard deviation 1.5 / sqrt(fan_in)), so names have a realistic spread of lengths.
fn random_model(dtype: Dtype) -> Vec<u8> {
    let config = ModelConfig::default();
    let mut rng = Rng::new(2024);
    let mut tensors: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = Vec::new();
    let mut pending_scale = None;
    for name in format::folded_tensors(&config, dtype) {
        let dims = name.shape(&config).unwrap().dims().to_vec();
        let n: usize = dims.iter().product();
        let (stored, data) = match name {
            TensorName::Embedding | TensorName::Weight(_) => {
                let std = if name == TensorName::Embedding {
                    1.0
                } else {
                    1.5 / (dims[1] as f64).sqrt()
                };
                let values: Vec<f64> = (0..n).map(|_| rng.normal() * std).collect();
                encode_matrix(dtype, &values, dims[1], &mut pending_scale)
            }
            TensorName::Scale(_) | TensorName::EmbeddingScale => (
                safetensors::Dtype::F32,
                pending_scale.take().expect("a scale follows its matrix"),
            ),
            _ => (
                safetensors::Dtype::F32,
                (0..n)
                    .flat_map(|_| ((rng.normal() * 0.1) as f32).to_le_bytes())
                    .collect(),
            ),
        };
        tensors.push((name.to_string(), dims, stored, data));
    }
    let metadata: HashMap<String, String> = [
        (keys::FORMAT, FOLDED_FORMAT.to_string()),
        (keys::FORMAT_VERSION, FORMAT_VERSION.to_string()),
        (keys::BLOCK_SIZE, "3".to_string()),
        (keys::EMBED_DIM, "10".to_string()),
        (keys::HIDDEN, "100,100,100,100,100".to_string()),
        (keys::VOCAB, VOCAB.to_string()),
        (keys::DTYPE, dtype.name().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let views = tensors.iter().map(|(name, dims, dtype, data)| {
        (
            name.clone(),
            TensorView::new(*dtype, dims.clone(), data).unwrap(),
        )
    });
    safetensors::serialize(views, Some(metadata)).unwrap()
}

/// The stored bytes of a row-major matrix with `cols` columns; for i8 also its row scales,
/// left in `scales` for the tensor that follows.
fn encode_matrix(
    dtype: Dtype,
    values: &[f64],
    cols: usize,
    scales: &mut Option<Vec<u8>>,
) -> (safetensors::Dtype, Vec<u8>) {
    match dtype {
        Dtype::F32 => (
            safetensors::Dtype::F32,
            values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
        ),
        Dtype::F16 => (
            safetensors::Dtype::F16,
            values
                .iter()
                .flat_map(|&v| half::f16::from_f64(v).to_le_bytes())
                .collect(),
        ),
        Dtype::I8 => {
            let mut row_scales = Vec::new();
            let mut data = Vec::new();
            for row in values.chunks(cols) {
                let scale = format::i8_row_scale(row);
                row_scales.extend(scale.to_le_bytes());
                data.extend(row.iter().map(|&v| format::quantize_i8(v, scale) as u8));
            }
            *scales = Some(row_scales);
            (safetensors::Dtype::I8, data)
        }
        // The benchmark's models are those of `Dtype::FLOAT`: q8 needs a calibrated
        // quantisation, which the exporter does not make yet.
        Dtype::Q8 => unreachable!("q8 is not in Dtype::FLOAT"),
    }
}

/// The contexts the symbols of `name` were drawn after, the start first: one forward pass
/// each without the cache.
fn contexts(model: &ModelView<'_>, name: &Name) -> Vec<Vec<u8>> {
    let mut context = Context::start(model.config().block_size());
    let mut chars = name.text.chars();
    let drawn = name.chars + usize::from(!name.cut);
    let mut contexts = Vec::with_capacity(drawn);
    for _ in 0..drawn {
        contexts.push(context.ids().to_vec());
        if let Some(ch) = chars.next() {
            context.push(model.vocab().encode(ch).unwrap());
        }
    }
    contexts
}

/// Symbols drawn for `names` (one forward pass each without the cache), and how many distinct
/// contexts they were drawn from (the forward passes with a cache that holds them all).
fn symbols_and_contexts(model: &ModelView<'_>, names: &[Name]) -> (usize, usize) {
    let mut distinct = HashSet::new();
    let mut symbols = 0;
    for name in names {
        let contexts = contexts(model, name);
        symbols += contexts.len();
        distinct.extend(contexts);
    }
    (symbols, distinct.len())
}

/// Prints the mean symbols per name and the share of symbols whose context the cache finds,
/// for the first 256, 1,024 and 4,096 names; returns their symbols.
fn report(label: &str, model: &ModelView<'_>, names: &[Name]) -> [usize; 3] {
    let mut line = format!("{label}:");
    let mut symbols = [0; 3];
    for (count, slot) in [NAMES, 1024, MANY_NAMES].into_iter().zip(&mut symbols) {
        let (drawn, contexts) = symbols_and_contexts(model, &names[..count]);
        line += &format!(
            " {count} names: {:.2} symbols per name, {:.1} % found in the cache;",
            drawn as f64 / count as f64,
            100.0 * (1.0 - contexts as f64 / drawn as f64),
        );
        *slot = drawn;
    }
    println!("{line}");
    symbols
}

/// `model` with its weights packed for the host's kernel.
fn packed<'a>(model: &ModelView<'a>) -> ModelView<'a> {
    let mut packed = model.clone();
    packed.pack_weights();
    packed
}

/// The unbatched and batched cases of `model` (see the module documentation), in a group
/// named `label`, which is returned for more cases.
fn bench_sampling<'c>(
    c: &'c mut Criterion,
    label: &str,
    model: &ModelView<'_>,
) -> BenchmarkGroup<'c, WallTime> {
    let settings = Settings::default();
    let names = generate_batched(model, &settings, &BatchOptions::new(MANY_NAMES)).unwrap();
    let [symbols, symbols_1024, many_symbols] = report(label, model, &names);
    let mut group = c.benchmark_group(label);
    group.throughput(Throughput::Elements(symbols as u64));
    let packed = packed(model);
    let portable = packed.clone().with_kernels(Kernels::Portable);
    let avx2 = packed.clone().with_kernels(Kernels::Avx2);
    let mut cases = vec![
        ("unbatched", &packed),
        ("unbatched-in-place", model),
        ("unbatched-portable", &portable),
    ];
    // q8's faster kernels need AVX-VNNI or AVX-512; the float dtypes run the AVX2 code anyway.
    if model.dtype() == Dtype::Q8 {
        cases.push(("unbatched-avx2", &avx2));
    }
    for (case, model) in cases {
        group.bench_function(case, |b| {
            b.iter(|| {
                let sampler = Sampler::<100>::new(model, black_box(settings)).unwrap();
                sampler.take(NAMES).for_each(|name| {
                    black_box(name);
                });
            })
        });
    }
    // The contexts of the unbatched names, the start only for the first: a sampler (one per
    // iteration) computes its logits once.
    let replay: Vec<Vec<u8>> = names[..NAMES]
        .iter()
        .enumerate()
        .flat_map(|(k, name)| contexts(model, name).into_iter().skip(usize::from(k > 0)))
        .collect();
    group.bench_function("unbatched-forwards", |b| {
        let mut forward = Forward::<100>::new();
        b.iter(|| {
            for context in &replay {
                black_box(forward.logits(&packed, black_box(context))[0]);
            }
        })
    });
    for (case, cache_bytes) in [("batched", DEFAULT_CACHE_BYTES), ("batched-compute", 0)] {
        let options = BatchOptions {
            cache_bytes,
            ..BatchOptions::new(NAMES)
        };
        group.bench_function(case, |b| {
            b.iter(|| black_box(generate_batched(model, black_box(&settings), &options)))
        });
    }
    for (count, symbols) in [(1024, symbols_1024), (MANY_NAMES, many_symbols)] {
        group.throughput(Throughput::Elements(symbols as u64));
        let options = BatchOptions::new(count);
        group.bench_function(format!("batched-{count}"), |b| {
            b.iter(|| black_box(generate_batched(model, black_box(&settings), &options)))
        });
    }
    group
}

/// One forward pass (weights packed, in place, and with the portable kernel) and the bare
/// weight stream it is compared with, in `group` (one element per iteration).
fn bench_forward(group: &mut BenchmarkGroup<'_, WallTime>, model: &ModelView<'_>) {
    group.throughput(Throughput::Elements(1));
    let packed = packed(model);
    let portable = packed.clone().with_kernels(Kernels::Portable);
    for (case, model) in [
        ("forward", &packed),
        ("forward-in-place", model),
        ("forward-portable", &portable),
    ] {
        group.bench_function(case, |b| {
            let mut forward = Forward::<100>::new();
            b.iter(|| black_box(forward.logits(model, black_box(&[0, 5, 9]))[0]))
        });
    }
    // What the memory system allows: as many bytes as the model's tensors, read once as 64-bit
    // words and summed, with nothing else to do (the compiler vectorises the sum).
    let bytes: usize = model.tensors().map(|(_, t)| t.len()).sum();
    let words = vec![1u64; bytes.div_ceil(8)];
    group.bench_function("stream", |b| {
        b.iter(|| {
            let words = black_box(&words[..]);
            black_box(words.iter().fold(0u64, |sum, &w| sum.wrapping_add(w)))
        })
    });
}

fn bench(c: &mut Criterion) {
    for dtype in Dtype::FLOAT {
        let bytes = random_model(dtype);
        let model = ModelView::parse(&bytes).unwrap();
        let mut group = bench_sampling(c, dtype.name(), &model);
        bench_forward(&mut group, &model);
        let layer = model.layers().nth(1).unwrap();
        let (x, mut y) = ([0.5f32; 100], [0.0f32; 100]);
        group.bench_function("matvec", |b| {
            b.iter(|| {
                layer.weight.matvec(black_box(&x), &mut y);
                black_box(y[0])
            })
        });
        group.finish();
    }
    for (label, bytes) in [("trained-f32", TRAINED), ("trained-q8", TRAINED_Q8)] {
        let model = ModelView::parse(bytes).unwrap();
        let mut group = bench_sampling(c, label, &model);
        bench_forward(&mut group, &model);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
