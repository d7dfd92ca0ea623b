//! The loader against hand-made files: every defect gives its own error, no cut of a valid
//! file is accepted, and the valid files load with the shapes and values they were written
//! with.

mod common;

use std::collections::BTreeSet;

use common::{FileSpec, assemble, bad_files, valid_files, view_tensors};
use namegen_model::{Dtype, TensorName};
use namegen_sampler::{LoadError, ModelView};

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

/// The variant's name; a match without a wildcard, so that a new variant must be added here
/// and then to the corpus.
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
    }
}

const VARIANTS: usize = 29;

#[test]
fn the_corpus_reaches_every_error_variant() {
    let reached: BTreeSet<&str> = bad_files()
        .iter()
        .filter_map(|f| ModelView::parse(&f.bytes).err())
        .map(|e| variant(&e))
        .collect();
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
