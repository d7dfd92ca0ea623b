//! The loader against hand-made files: every defect gives its own error, no cut of a valid
//! file is accepted, and the valid files load with the shapes and values they were written
//! with.

mod common;

use std::collections::BTreeSet;

use common::{FileSpec, TensorSpec, assemble, bad_files, valid_files, view_tensors};
use namegen_model::{Dtype, TensorName};
use namegen_sampler::{
    DefaultSampler, Forward, Layout, LoadError, MAX_MAGNITUDE, ModelView, Settings, score,
};
use proptest::prelude::*;

#[test]
fn every_bad_file_gives_its_own_error() {
    let mut failures = Vec::new();
    for file in bad_files() {
        match ModelView::parse(&file.bytes) {
            Ok(_) => failures.push(format!("{}: accepted", file.name)),
            Err(e) if (file.expected)(&e) => {}
            Err(e) => failures.push(format!("{}: {e:?}", file.name)),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The variant's name. `LoadError` is non-exhaustive, so this match needs a wildcard and the
/// compiler no longer sees a variant missing here: [`every_declared_variant_is_counted`] reads
/// the variants from their definition instead, and the corpus test refuses `unlisted`.
fn variant(e: &LoadError) -> &'static str {
    use LoadError as E;
    match e {
        E::TooShort { .. } => "TooShort",
        E::HeaderTooLarge { .. } => "HeaderTooLarge",
        E::HeaderPastEnd { .. } => "HeaderPastEnd",
        E::HeaderStart { .. } => "HeaderStart",
        E::NotUtf8 { .. } => "NotUtf8",
        E::Json { .. } => "Json",
        E::DuplicateKey { .. } => "DuplicateKey",
        E::UnknownField { .. } => "UnknownField",
        E::MissingField { .. } => "MissingField",
        E::NoMetadata => "NoMetadata",
        E::MissingMetadata { .. } => "MissingMetadata",
        E::WrongFormat { .. } => "WrongFormat",
        E::UnsupportedVersion { .. } => "UnsupportedVersion",
        E::UnknownDtype { .. } => "UnknownDtype",
        // Only a sampler built without a dtype's feature gives it; the tests have every kernel,
        // so the corpus cannot reach it and VARIANTS does not count it.
        E::DtypeNotBuilt { .. } => "DtypeNotBuilt",
        E::MetadataTooLong { .. } => "MetadataTooLong",
        E::Config(_) => "Config",
        E::Vocab { .. } => "Vocab",
        E::UnexpectedTensor { .. } => "UnexpectedTensor",
        E::MissingTensor(_) => "MissingTensor",
        E::TensorDtype { .. } => "TensorDtype",
        E::TensorShape { .. } => "TensorShape",
        E::OffsetsReversed { .. } => "OffsetsReversed",
        E::OffsetsPastEnd { .. } => "OffsetsPastEnd",
        E::TensorLength { .. } => "TensorLength",
        E::TensorsOverlap { .. } => "TensorsOverlap",
        E::UncoveredData { .. } => "UncoveredData",
        E::NonFinite { .. } => "NonFinite",
        E::ScaleNotPositive { .. } => "ScaleNotPositive",
        E::QuantOutOfRange { .. } => "QuantOutOfRange",
        E::MultiplierNotPositive { .. } => "MultiplierNotPositive",
        E::ShiftOutOfRange { .. } => "ShiftOutOfRange",
        E::MayOverflow { .. } => "MayOverflow",
        E::IntegerOverflow { .. } => "IntegerOverflow",
        _ => "unlisted",
    }
}

const VARIANTS: usize = 33;

#[test]
fn every_declared_variant_is_counted() {
    // The variants as `sampler/src/error.rs` declares them: the lines of the enum's body that
    // start with a capital at one level of indentation. All but DtypeNotBuilt are counted.
    let source = include_str!("../src/error.rs");
    let body = source
        .split_once("pub enum LoadError {")
        .and_then(|(_, rest)| rest.split_once("\n}\n"))
        .map(|(body, _)| body)
        .unwrap();
    let declared = body
        .lines()
        .filter(|line| {
            line.strip_prefix("    ")
                .is_some_and(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .count();
    assert_eq!(
        declared,
        VARIANTS + 1,
        "a LoadError variant to add to `variant` and the corpus"
    );
}

#[test]
fn the_corpus_reaches_every_error_variant() {
    let reached: BTreeSet<&str> = bad_files()
        .iter()
        .filter_map(|f| ModelView::parse(&f.bytes).err())
        .map(|e| variant(&e))
        .collect();
    assert!(!reached.contains("unlisted"), "{reached:?}");
    assert_eq!(reached.len(), VARIANTS, "{reached:?}");
}

#[test]
fn distinct_defects_give_distinct_errors() {
    // The same error for two different defects would not say which one the file has.
    let errors: Vec<(String, LoadError)> = bad_files()
        .into_iter()
        .map(|f| (f.name, ModelView::parse(&f.bytes).unwrap_err()))
        .collect();
    for (i, (a, ea)) in errors.iter().enumerate() {
        for (b, eb) in &errors[i + 1..] {
            assert_ne!(ea, eb, "{a} and {b}");
        }
    }
}

#[test]
fn no_cut_of_a_valid_file_is_accepted() {
    for (name, bytes) in valid_files() {
        for len in 0..bytes.len() {
            let result = ModelView::parse(&bytes[..len]);
            assert!(result.is_err(), "{name} cut at {len} was accepted");
        }
    }
}

#[test]
fn cuts_fail_at_the_boundary_they_cross() {
    let spec = FileSpec::folded(Dtype::I8, 4);
    let bytes = spec.to_bytes();
    let data_start = 8 + spec.header().len();
    for len in 0..bytes.len() {
        let error = ModelView::parse(&bytes[..len]).unwrap_err();
        let ok = match len {
            0..8 => error == LoadError::TooShort { len },
            _ if len < data_start => matches!(error, LoadError::HeaderPastEnd { .. }),
            _ => matches!(error, LoadError::OffsetsPastEnd { .. }),
        };
        assert!(ok, "cut at {len}: {error:?}");
    }
}

#[test]
fn valid_files_load_with_their_values() {
    for (name, bytes) in valid_files() {
        let view = ModelView::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            view_tensors(&view),
            common::reference_tensors(&st),
            "{name}"
        );
    }
}

#[test]
fn the_view_describes_the_file() {
    let spec = FileSpec::folded(Dtype::I8, 5);
    let bytes = spec.to_bytes();
    let view = ModelView::parse(&bytes).unwrap();
    assert_eq!(view.dtype(), Dtype::I8);
    assert_eq!(view.config().block_size(), 3);
    assert_eq!(view.config().embed_dim(), 4);
    assert_eq!(view.config().hidden(), &[8, 8]);
    assert_eq!(view.vocab().to_string(), common::VOCAB);
    assert_eq!(view.embedding().rows(), 5);
    assert_eq!(view.embedding().cols(), 4);
    let dims: Vec<_> = view
        .layers()
        .map(|l| (l.weight.rows(), l.weight.cols(), l.bias.len()))
        .collect();
    assert_eq!(dims, [(8, 12, 8), (8, 8, 8), (5, 8, 5)]);
    // Zero-copy: the weights are read where they lie in the file.
    let emb = &spec.tensors[0];
    let data_start = 8 + spec.header().len();
    assert_eq!(emb.name, TensorName::Embedding.to_string());
    assert_eq!(
        view.embedding().row_bytes(0).as_ptr(),
        bytes[data_start..].as_ptr()
    );
}

#[test]
fn unaligned_files_load() {
    let bytes = FileSpec::folded(Dtype::F32, 6).to_bytes();
    let mut shifted = vec![0u8; bytes.len() + 3];
    for skew in 0..4 {
        shifted[skew..skew + bytes.len()].copy_from_slice(&bytes);
        let view = ModelView::parse(&shifted[skew..skew + bytes.len()]).unwrap();
        let reference = ModelView::parse(&bytes).unwrap();
        assert_eq!(view_tensors(&view), view_tensors(&reference));
    }
}

#[test]
fn unknown_metadata_is_ignored_but_must_be_strings() {
    let mut spec = FileSpec::folded(Dtype::F16, 7);
    spec.set_meta("provenance.val_loss", "2.0712");
    spec.set_meta("something else", "{\"not\": \"parsed\"}");
    ModelView::parse(&spec.to_bytes()).unwrap();
    let header = spec.header().replace("\"2.0712\"", "2.0712");
    let error = ModelView::parse(&assemble(&header, &spec.data())).unwrap_err();
    assert!(matches!(error, LoadError::Json { .. }), "{error:?}");
}

#[test]
fn offsets_point_at_the_offending_value() {
    let mut spec = FileSpec::folded(Dtype::F32, 8);
    spec.set_meta("format", "namegen-unfolded");
    let bytes = spec.to_bytes();
    let Err(LoadError::WrongFormat { offset }) = ModelView::parse(&bytes) else {
        panic!("expected WrongFormat");
    };
    assert!(bytes[offset..].starts_with(b"\"namegen-unfolded\""));

    let spec = FileSpec::folded(Dtype::F32, 8);
    let header = spec
        .header()
        .replacen("\"dtype\":\"F32\"", "\"dtype\":\"F32\",\"x\":1", 1);
    let bytes = assemble(&header, &spec.data());
    let Err(LoadError::UnknownField { offset }) = ModelView::parse(&bytes) else {
        panic!("expected UnknownField");
    };
    assert!(bytes[offset..].starts_with(b"\"x\""));

    let header = spec.header().replacen("[5,4]", "[5,4,]", 1);
    let bytes = assemble(&header, &spec.data());
    let Err(LoadError::Json { offset, .. }) = ModelView::parse(&bytes) else {
        panic!("expected a JSON error");
    };
    assert!(bytes[offset..].starts_with(b"]"));
}

#[test]
fn errors_display_what_and_where() {
    for file in bad_files() {
        let error = ModelView::parse(&file.bytes).unwrap_err();
        let text = error.to_string();
        assert!(!text.is_empty(), "{}", file.name);
        let debug = format!("{error:?}");
        if debug.contains("offset:") {
            assert!(text.contains("byte"), "{}: {text}", file.name);
        }
        if debug.contains("tensor:") {
            assert!(text.contains("tensor"), "{}: {text}", file.name);
        }
    }
}

// Weights too large for f32 arithmetic.
//
// The expected errors below come from `Bounds`, worked out here from the spec's bytes with the
// rule `model/FORMAT.md` states, not from the loader.

/// The bound the loader enforces (`MAX_MAGNITUDE`), written out on its own.
const LIMIT: f64 = 1e37;

/// A tensor of a spec by name.
fn tensor<'s>(spec: &'s FileSpec, name: &str) -> Option<&'s TensorSpec> {
    spec.tensors.iter().find(|t| t.name == name)
}

/// Writes `values` into a tensor in its dtype: f32 and f16 rounded to nearest, i8 as the
/// integers they must be.
fn store(t: &mut TensorSpec, values: &[f64]) {
    t.data = match t.dtype.as_str() {
        "F32" => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        "F16" => values
            .iter()
            .flat_map(|&v| half::f16::from_f64(v).to_le_bytes())
            .collect(),
        "I8" => values
            .iter()
            .map(|&v| {
                assert_eq!(v, v.round());
                (v as i8).to_le_bytes()[0]
            })
            .collect(),
        other => panic!("{other}"),
    };
}

/// Rewrites every value of tensor `name` with `f(index, value)`.
fn map_tensor(spec: &mut FileSpec, name: &str, f: impl Fn(usize, f64) -> f64) {
    let t = spec.tensor_mut(name);
    let values: Vec<f64> = t
        .stored()
        .into_iter()
        .enumerate()
        .map(|(i, v)| f(i, v))
        .collect();
    store(t, &values);
}

/// The row scales of matrix `name` (its `.scale` tensor for i8, 1 otherwise).
fn row_scales(spec: &FileSpec, name: &str, rows: usize) -> Vec<f64> {
    let scale = name.replace("weight", "scale");
    tensor(spec, &scale).map_or(vec![1.0; rows], TensorSpec::stored)
}

/// One output of a layer: its bound with the i8 scale left out (the kernels' sum before
/// scaling), its whole bound, and its bias's magnitude.
#[derive(Clone, Copy, Debug)]
struct RowBound {
    unscaled: f64,
    bound: f64,
    bias: f64,
}

/// The largest magnitudes a model's forward pass can reach over all contexts.
#[derive(Debug)]
struct Bounds {
    /// Per symbol, its embedding's largest value as the forward pass decodes it (for i8, the
    /// f32 product `q * scale`).
    embedding: Vec<f64>,
    /// Per layer, per output.
    layers: Vec<Vec<RowBound>>,
}

impl Bounds {
    fn of(spec: &FileSpec) -> Self {
        let emb = tensor(spec, "emb.weight").unwrap();
        let (vocab, dim) = (emb.shape[0] as usize, emb.shape[1] as usize);
        let scales = row_scales(spec, "emb.weight", vocab);
        let decoded: Vec<f64> = emb
            .stored()
            .iter()
            .enumerate()
            .map(|(i, &v)| match emb.dtype.as_str() {
                "I8" => f64::from(v as f32 * scales[i / dim] as f32),
                _ => v,
            })
            .collect();
        let embedding = decoded
            .chunks(dim)
            .map(|row| largest(row.iter().copied()))
            .collect();
        let column_max: Vec<f64> = (0..dim)
            .map(|c| largest((0..vocab).map(|s| decoded[s * dim + c])))
            .collect();
        let mut layers = Vec::new();
        while let Some(w) = tensor(spec, &format!("layers.{}.weight", layers.len())) {
            let i = layers.len();
            let (rows, cols) = (w.shape[0] as usize, w.shape[1] as usize);
            let q = w.stored();
            let scales = row_scales(spec, &w.name, rows);
            let bias = tensor(spec, &format!("layers.{i}.bias")).unwrap().stored();
            let input = |c: usize| if i == 0 { column_max[c % dim] } else { 1.0 };
            let rows = (0..rows)
                .map(|r| {
                    let unscaled: f64 = (0..cols).map(|c| q[r * cols + c].abs() * input(c)).sum();
                    let bias = bias[r].abs();
                    RowBound {
                        unscaled,
                        bound: unscaled * scales[r] + bias,
                        bias,
                    }
                })
                .collect();
            layers.push(rows);
        }
        Self { embedding, layers }
    }

    /// The error the loader must give: the first value past the limit, embedding rows first,
    /// then layer by layer, output by output.
    fn expected_error(&self) -> Option<LoadError> {
        if let Some(row) = self.embedding.iter().position(|&m| m > LIMIT) {
            let tensor = TensorName::Embedding;
            return Some(LoadError::MayOverflow { tensor, row });
        }
        self.layers.iter().enumerate().find_map(|(i, rows)| {
            let row = rows
                .iter()
                .position(|r| r.unscaled > LIMIT || r.bound > LIMIT)?;
            let tensor = if rows[row].bias > LIMIT {
                TensorName::Bias(i)
            } else {
                TensorName::Weight(i)
            };
            Some(LoadError::MayOverflow { tensor, row })
        })
    }

    /// The largest bound of each layer.
    fn layer_maxima(&self) -> Vec<f64> {
        let max = |rows: &Vec<RowBound>| largest(rows.iter().map(|r| r.bound));
        self.layers.iter().map(max).collect()
    }
}

/// The largest magnitude of `values` (0 for none).
fn largest(values: impl Iterator<Item = f64>) -> f64 {
    values.map(f64::abs).fold(0.0, f64::max)
}

#[test]
fn the_bound_is_1e37_and_leaves_f32_a_margin() {
    assert_eq!(MAX_MAGNITUDE, LIMIT);
    // An f32 sum of n products, in any order, is off the exact one by about n * 2^-24 times
    // the sum of their magnitudes, the bound (n at most 4,096 inputs, the bias and the i8
    // scale); the sampler subtracts two logits; 16 is the margin left.
    let rounding = 1.0 + 4098.0 * f64::from(f32::EPSILON) / 2.0;
    assert!(2.0 * MAX_MAGNITUDE * rounding * 16.0 < f64::from(f32::MAX));
}

#[test]
fn huge_values_are_refused_at_the_first_row_they_can_overflow() {
    use TensorName as T;
    let [f32_spec, f16_spec, i8_spec] =
        [Dtype::F32, Dtype::F16, Dtype::I8].map(|d| FileSpec::folded(d, 1));
    let edited = |spec: &FileSpec, name: &str, f: &dyn Fn(usize, f64) -> f64| {
        let mut spec = spec.clone();
        map_tensor(&mut spec, name, f);
        spec
    };
    let at = |index: usize, value: f64| move |i: usize, v: f64| if i == index { value } else { v };
    // Every embedding scale 5e34 (values up to 127 * 5e34 = 6.4e36, in range), and layer 0's
    // scales 1e-30: every scaled bound of layer 0 is tiny, but the i8 kernels first add up
    // q * x unscaled, which goes past f32::MAX.
    let mut unscaled = edited(&i8_spec, "emb.scale", &|_, _| 5e34);
    map_tensor(&mut unscaled, "layers.0.scale", |_, _| 1e-30);
    let layer0 = &Bounds::of(&unscaled).layers[0];
    let past_f32 = |r: &RowBound| r.bound < 1e12 && r.unscaled > f64::from(f32::MAX);
    assert!(layer0.iter().all(past_f32), "{layer0:?}");
    // (name, file, the error where it is certain without working the bound out)
    type Case = (&'static str, FileSpec, Option<(TensorName, usize)>);
    let cases: Vec<Case> = vec![
        (
            "f32 hidden weight 3e38",
            edited(&f32_spec, "layers.1.weight", &at(19, 3e38)),
            Some((T::Weight(1), 2)),
        ),
        (
            "f32 output weight 3e38",
            edited(&f32_spec, "layers.2.weight", &at(33, -3e38)),
            Some((T::Weight(2), 4)),
        ),
        (
            "i8 hidden scale 3e38",
            edited(&i8_spec, "layers.1.scale", &at(6, 3e38)),
            Some((T::Weight(1), 6)),
        ),
        (
            "f32 embedding 3e38",
            edited(&f32_spec, "emb.weight", &at(9, 3e38)),
            Some((T::Embedding, 2)),
        ),
        (
            "f32 embedding -3e38",
            edited(&f32_spec, "emb.weight", &at(19, -3e38)),
            Some((T::Embedding, 4)),
        ),
        (
            "i8 embedding scale 3e38",
            edited(&i8_spec, "emb.scale", &at(3, 3e38)),
            Some((T::Embedding, 3)),
        ),
        // In range itself, but layer 0 multiplies it by weights summing to more than 1.
        (
            "f32 embedding 9.9e36",
            edited(&f32_spec, "emb.weight", &at(9, 9.9e36)),
            None,
        ),
        (
            "f32 last bias 3e38",
            edited(&f32_spec, "layers.2.bias", &at(3, 3e38)),
            Some((T::Bias(2), 3)),
        ),
        (
            "f16 last bias 3e38",
            edited(&f16_spec, "layers.2.bias", &at(3, 3e38)),
            Some((T::Bias(2), 3)),
        ),
        (
            "i8 last bias -3e38",
            edited(&i8_spec, "layers.2.bias", &at(3, -3e38)),
            Some((T::Bias(2), 3)),
        ),
        (
            "f32 hidden bias 2e37",
            edited(&f32_spec, "layers.0.bias", &at(7, 2e37)),
            Some((T::Bias(0), 7)),
        ),
        (
            "i8 unscaled sum past f32",
            unscaled,
            Some((T::Weight(0), 0)),
        ),
    ];
    for (name, spec, certain) in cases {
        let bounds = Bounds::of(&spec);
        let expected = bounds.expected_error();
        assert!(expected.is_some(), "{name}: {bounds:?}");
        if let Some((tensor, row)) = certain {
            assert_eq!(
                expected,
                Some(LoadError::MayOverflow { tensor, row }),
                "{name}"
            );
        }
        let error = ModelView::parse(&spec.to_bytes()).unwrap_err();
        assert_eq!(Some(error), expected, "{name}");
    }
}

#[test]
fn embeddings_wider_than_the_loaders_window_are_bounded_column_by_column() {
    // 130 columns: the loader keeps 64 columns' largest values at a time, so these take
    // three windows, the last one partial. One large value at a time, at each window's
    // edges, of sizes on both sides of the limit once layer 0 has weighed them.
    let spec = FileSpec::folded_with(2, 130, &[3], TINY_VOCAB, Dtype::F32, 4);
    let (mut accepted, mut refused) = (0, 0);
    for column in [0, 63, 64, 127, 128, 129] {
        for value in [2e36, 5e36, -9e36] {
            let mut spec = spec.clone();
            map_tensor(&mut spec, "emb.weight", |i, v| {
                if i == 130 + column { value } else { v }
            });
            let expected = Bounds::of(&spec).expected_error();
            let got = ModelView::parse(&spec.to_bytes()).err();
            assert_eq!(got, expected, "column {column}, {value:e}");
            match got {
                None => accepted += 1,
                Some(_) => refused += 1,
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn f16_weights_at_their_largest_cannot_overflow() {
    // f16 stops at 65504: 12 inputs of 65504 * 65504 are 5.1e10, far in range. Only an f32
    // bias can take an f16 model out of range (see the test above).
    let mut spec = FileSpec::folded(Dtype::F16, 2);
    let names: Vec<String> = spec
        .tensors
        .iter()
        .filter(|t| t.dtype == "F16")
        .map(|t| t.name.clone())
        .collect();
    for name in &names {
        map_tensor(&mut spec, name, |_, v| 65504.0f64.copysign(v));
    }
    let bounds = Bounds::of(&spec);
    assert_eq!(bounds.expected_error(), None);
    assert!(bounds.layer_maxima()[0] > 5e10);
    let bytes = spec.to_bytes();
    let view = ModelView::parse(&bytes).unwrap();
    let mut forward = Forward::<100>::new();
    for context in every_context(5, 3) {
        let logits = forward.logits(&view, &context);
        assert!(
            logits.iter().all(|z| z.is_finite()),
            "{context:?}: {logits:?}"
        );
    }
}

#[test]
fn a_refused_model_does_overflow_when_viewed_unchecked() {
    // What the check prevents: the last layer's row 0 all 3e38 after saturated hidden units
    // (biases of 1000) sums to infinity, and the sampler's `z - max` to NaN.
    let mut spec = FileSpec::folded(Dtype::F32, 3);
    map_tensor(&mut spec, "layers.1.bias", |_, _| 1000.0);
    map_tensor(
        &mut spec,
        "layers.2.weight",
        |i, v| if i < 8 { 3e38 } else { v },
    );
    let error = ModelView::parse(&spec.to_bytes()).unwrap_err();
    let expected = LoadError::MayOverflow {
        tensor: TensorName::Weight(2),
        row: 0,
    };
    assert_eq!(error, expected);
    assert_eq!(Bounds::of(&spec).expected_error(), Some(expected));
    // `from_layout` trusts the values, so it shows what `parse` refused to let through.
    let layout = Layout {
        dtype: Dtype::F32,
        symbols: common::VOCAB,
        block_size: common::BLOCK,
        embed_dim: common::EMBED,
        hidden: &common::HIDDEN,
    };
    let data = spec.data();
    let view = ModelView::from_layout(&layout, &data).unwrap();
    let mut forward = Forward::<100>::new();
    for context in every_context(5, 3) {
        assert_eq!(
            forward.logits(&view, &context)[0],
            f32::INFINITY,
            "{context:?}"
        );
    }
    let name = DefaultSampler::new(&view, Settings::default())
        .unwrap()
        .name_at(0);
    assert!(name.log_likelihood.is_nan(), "{name:?}");
}

#[test]
fn the_overflow_error_names_the_tensor_and_says_why() {
    let error = LoadError::MayOverflow {
        tensor: TensorName::Weight(1),
        row: 2,
    };
    let text = error.to_string();
    // The message writes the limit out rather than formatting the constant (which would link
    // float printing into the WASM module): it must say the constant's value.
    let limit = format!("{MAX_MAGNITUDE:e}");
    for part in [
        "tensor layers.1.weight",
        "row 2",
        "too large for f32",
        &limit,
    ] {
        assert!(text.contains(part), "{text}");
    }
}

#[test]
fn shipped_models_are_far_inside_the_bound() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    for dtype in Dtype::ALL {
        let path = data.join(format!("model-{dtype}.safetensors"));
        let bytes = std::fs::read(&path).unwrap();
        ModelView::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bounds = Bounds::of(&FileSpec::read(&bytes));
        let embedding = largest(bounds.embedding.iter().copied());
        let layers = bounds.layer_maxima();
        eprintln!("{dtype}: embedding {embedding:.4}, layers {layers:.4?}");
        assert!(
            embedding < 100.0 && layers.iter().all(|&b| b < 1e4),
            "{dtype}: {layers:?}"
        );
    }
}

/// Every context of `block` symbols out of `vocab`.
fn every_context(vocab: u8, block: u32) -> Vec<Vec<u8>> {
    (0..u32::from(vocab).pow(block))
        .map(|mut n| {
            (0..block)
                .map(|_| {
                    let symbol = (n % u32::from(vocab)) as u8;
                    n /= u32::from(vocab);
                    symbol
                })
                .collect()
        })
        .collect()
}

/// The tiny model of the property test: 9 contexts, two hidden layers.
const TINY_VOCAB: &str = ".ab";

/// A tiny model pushed to just under the limit: every output of every layer has the bound
/// `target`, the weights taking `1 - bias_share` of it (as far as the dtype can hold them)
/// and the bias the rest. `aligned` makes every sign agree (embedding, hidden weights and
/// biases positive, the output rows alternately all positive and all negative), so that the
/// logits reach `+-target` themselves rather than a fraction of it.
fn pushed_to(
    dtype: Dtype,
    seed: u64,
    embedding_exp: i32,
    bias_share: f64,
    aligned: bool,
    target: f64,
) -> FileSpec {
    let mut spec = FileSpec::folded_with(2, 2, &[4, 4], TINY_VOCAB, dtype, seed);
    let last = 2;
    let sign = |layer: usize, row: usize| match (aligned, layer == last) {
        (false, _) => None,
        (true, false) => Some(1.0),
        (true, true) => Some(if row.is_multiple_of(2) { 1.0 } else { -1.0 }),
    };
    let signed = |s: Option<f64>, v: f64| s.map_or(v, |s| v.abs() * s);
    if aligned {
        map_tensor(&mut spec, "emb.weight", |_, v| v.abs());
    }
    // The embedding's largest value to 10^embedding_exp (f16 stops at 65504).
    let factor = 10f64.powi(embedding_exp) / largest(Bounds::of(&spec).embedding.into_iter());
    match dtype {
        Dtype::I8 => map_tensor(&mut spec, "emb.scale", |_, v| v * factor),
        Dtype::F16 => map_tensor(&mut spec, "emb.weight", |_, v| {
            (v * factor).clamp(-65504.0, 65504.0)
        }),
        Dtype::F32 => map_tensor(&mut spec, "emb.weight", |_, v| v * factor),
        Dtype::Q8 => unreachable!("q8's integer bound has its own tests (tests/q8.rs)"),
    }
    for layer in 0..=last {
        let (weight, scale, bias) = (
            format!("layers.{layer}.weight"),
            format!("layers.{layer}.scale"),
            format!("layers.{layer}.bias"),
        );
        let cols = tensor(&spec, &weight).unwrap().shape[1] as usize;
        map_tensor(&mut spec, &weight, |i, v| signed(sign(layer, i / cols), v));
        let rows = &Bounds::of(&spec).layers[layer];
        let factor = (1.0 - bias_share) * target / largest(rows.iter().map(|r| r.bound - r.bias));
        match dtype {
            Dtype::I8 => map_tensor(&mut spec, &scale, |_, v| v * factor),
            Dtype::F16 => {
                let stored_max = largest(tensor(&spec, &weight).unwrap().stored().into_iter());
                let factor = factor.min(65504.0 / stored_max);
                map_tensor(&mut spec, &weight, |_, v| {
                    (v * factor).clamp(-65504.0, 65504.0)
                });
            }
            Dtype::F32 => map_tensor(&mut spec, &weight, |_, v| v * factor),
            Dtype::Q8 => unreachable!("q8's integer bound has its own tests (tests/q8.rs)"),
        }
        // Each bias fills its row up to the target, after the weights' own rounding.
        let rows = Bounds::of(&spec).layers[layer].clone();
        map_tensor(&mut spec, &bias, |r, v| {
            let fill = target - (rows[r].bound - rows[r].bias);
            let s = sign(layer, r).unwrap_or(if v < 0.0 { -1.0 } else { 1.0 });
            s * fill
        });
    }
    spec
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A model just under the limit, in every layer at once, gives finite logits for every
    /// context, and names with log-likelihoods that are numbers, at any temperature; just
    /// over it, it is refused.
    #[test]
    fn a_model_just_under_the_bound_stays_finite(
        dtype in prop::sample::select(Dtype::ALL.to_vec()),
        seed in 0..1000u64,
        embedding_exp in 0..=30i32,
        bias_share in 0.01..0.99f64,
        aligned in any::<bool>(),
    ) {
        let target = LIMIT * (1.0 - 1e-5);
        let spec = pushed_to(dtype, seed, embedding_exp, bias_share, aligned, target);
        let bounds = Bounds::of(&spec);
        prop_assert_eq!(bounds.expected_error(), None, "{:?}", bounds);
        for (layer, max) in bounds.layer_maxima().into_iter().enumerate() {
            let reached = max > target * (1.0 - 1e-6);
            prop_assert!(reached, "layer {} reaches only {:e}", layer, max);
        }
        let bytes = spec.to_bytes();
        let view = ModelView::parse(&bytes).unwrap();
        let mut forward = Forward::<100>::new();
        for context in every_context(3, 2) {
            let logits = forward.logits(&view, &context);
            for &z in logits {
                let in_range = z.is_finite() && f64::from(z.abs()) <= LIMIT * 1.001;
                prop_assert!(in_range, "{:?}: {:?}", context, logits);
            }
            if aligned {
                // Rows 0 and 2 all positive, row 1 all negative: the logits span 2e37.
                prop_assert!(f64::from(logits[0]) > 0.99 * target, "{:?}", logits);
                prop_assert!(f64::from(logits[1]) < -0.99 * target, "{:?}", logits);
            }
        }
        for (temperature, top_k, top_p, prefix, min_len) in [
            (1.0, 0, 1.0, "", 1),
            (0.0, 0, 1.0, "", 1),
            (1e-3, 2, 1.0, "b", 1),
            (30.0, 0, 0.5, "ba", 4),
            (1e30, 0, 1.0, "", 3),
        ] {
            let settings = Settings {
                temperature,
                top_k,
                top_p,
                seed,
                prefix,
                min_len,
                max_len: 6,
            };
            for name in DefaultSampler::new(&view, settings).unwrap().take(4) {
                prop_assert!(!name.log_likelihood.is_nan(), "{:?}", name);
                let scored = score(&view, &mut Forward::<100>::new(), &name.text);
                if !name.cut {
                    let scored = scored.unwrap().log_likelihood;
                    prop_assert_eq!(scored.to_bits(), name.log_likelihood.to_bits());
                }
            }
        }

        // Just over the limit in the output layer's row 0: refused, there.
        let mut over = spec.clone();
        let row0 = bounds.layers[2][0];
        let fill = LIMIT * (1.0 + 1e-5) - (row0.bound - row0.bias);
        map_tensor(&mut over, "layers.2.bias", |r, v| {
            if r == 0 { fill.copysign(v) } else { v }
        });
        let expected = Bounds::of(&over).expected_error();
        let tensor = if fill > LIMIT {
            TensorName::Bias(2)
        } else {
            TensorName::Weight(2)
        };
        prop_assert_eq!(expected, Some(LoadError::MayOverflow { tensor, row: 0 }));
        prop_assert_eq!(ModelView::parse(&over.to_bytes()).err(), expected);
    }
}
