//! The loader against the `safetensors` crate: on every test file and on generated inputs it
//! never accepts a file that crate refuses, and when both accept, both read the same tensors
//! (names, dtypes, shapes, bytes) and the view matches the metadata.

mod common;

use std::collections::HashMap;

use common::{FileSpec, assemble, bad_files, reference_tensors, valid_files, view_tensors};
use namegen_model::Dtype;
use namegen_model::format::keys;
use namegen_sampler::ModelView;
use proptest::prelude::*;
use proptest::sample::Index;
use safetensors::SafeTensors;

/// Whether the loader accepted; panics if it accepted what `safetensors` refuses or read
/// anything differently.
fn agree(bytes: &[u8]) -> bool {
    let ours = ModelView::parse(bytes);
    let theirs = SafeTensors::deserialize(bytes);
    match (ours, theirs) {
        (Ok(view), Ok(st)) => {
            assert_eq!(view_tensors(&view), reference_tensors(&st));
            let (_, metadata) = SafeTensors::read_metadata(bytes).unwrap();
            let metadata = metadata.metadata().as_ref().expect("metadata");
            assert_eq!(metadata[keys::VOCAB], view.vocab().to_string());
            assert_eq!(metadata[keys::DTYPE], view.dtype().name());
            let hidden: Vec<String> = view
                .config()
                .hidden()
                .iter()
                .map(|h| h.to_string())
                .collect();
            assert_eq!(metadata[keys::HIDDEN], hidden.join(","));
            true
        }
        (Ok(_), Err(e)) => panic!("accepted a file safetensors refuses: {e}"),
        (Err(_), _) => false,
    }
}

#[test]
fn both_read_every_valid_file_alike() {
    for (name, bytes) in valid_files() {
        assert!(agree(&bytes), "{name} was refused");
    }
}

#[test]
fn the_bad_corpus_is_refused_whatever_safetensors_says() {
    // Many of these are valid safetensors files that are not valid folded models.
    let mut accepted_by_safetensors = 0;
    for file in bad_files() {
        assert!(!agree(&file.bytes), "{} was accepted", file.name);
        accepted_by_safetensors += usize::from(SafeTensors::deserialize(&file.bytes).is_ok());
    }
    assert!(accepted_by_safetensors > 10);
}

#[test]
fn files_written_by_the_safetensors_crate_load() {
    // safetensors orders tensors by dtype alignment, then name, and pads its header.
    for dtype in Dtype::FLOAT {
        let spec = FileSpec::folded(dtype, 11);
        let views: Vec<_> = spec
            .tensors
            .iter()
            .map(|t| {
                let dtype = match t.dtype.as_str() {
                    "F32" => safetensors::Dtype::F32,
                    "F16" => safetensors::Dtype::F16,
                    _ => safetensors::Dtype::I8,
                };
                let shape = t.shape.iter().map(|&d| d as usize).collect();
                let view = safetensors::tensor::TensorView::new(dtype, shape, &t.data).unwrap();
                (t.name.clone(), view)
            })
            .collect();
        let metadata: HashMap<String, String> = spec.metadata.iter().cloned().collect();
        let bytes = safetensors::serialize(views, Some(metadata)).unwrap();
        assert!(agree(&bytes), "{dtype}");
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Prefix(u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<Index>(), 1..16usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        1 => prop_oneof![0..2000u64, Just(u64::MAX), Just(100_000_001)].prop_map(Mutation::Prefix),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match m {
        Mutation::Flip(at, bit) => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Set(at, b) => bytes[at.index(len)] = *b,
        Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Mutation::Insert(at, b) => {
            let at = at.index(bytes.len());
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let at = at.index(bytes.len());
            bytes.drain(at..(at + n).min(bytes.len()));
        }
        Mutation::Prefix(v) if bytes.len() >= 8 => bytes[..8].copy_from_slice(&v.to_le_bytes()),
        Mutation::Prefix(_) => {}
    }
}

fn dtype() -> impl Strategy<Value = Dtype> {
    prop::sample::select(Dtype::FLOAT.to_vec())
}

/// A valid file rewritten the ways another writer may legally write it: entries and data in
/// any order, whitespace between tokens, keys and values with escaped characters, unknown
/// metadata.
fn rewritten_file() -> impl Strategy<Value = Vec<u8>> {
    (
        dtype(),
        0..4u64,
        any::<u64>(),
        prop::collection::vec(
            (
                any::<Index>(),
                prop::sample::select(vec![" ", "\n", "\t", "\r\n"]),
            ),
            0..6,
        ),
        prop::collection::vec(any::<Index>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(dtype, seed, order_seed, blanks, escapes, extra)| {
            let mut spec = FileSpec::folded(dtype, seed);
            if extra {
                spec.set_meta("provenance.note", "ünïcödé \\ /");
            }
            let mut rng = namegen_model::Rng::new(order_seed);
            // Data laid out in one order, header entries listed in another.
            rng.shuffle(&mut spec.tensors);
            let offsets = spec.offsets();
            let mut listed: Vec<usize> = (0..spec.tensors.len()).collect();
            rng.shuffle(&mut listed);
            let entries: Vec<String> = listed
                .iter()
                .map(|&i| {
                    let t = &spec.tensors[i];
                    let (b, e) = offsets[i];
                    format!(
                        "{}:{}",
                        common::json_string(&t.name),
                        common::entry_json(&t.dtype, &t.shape, b, e)
                    )
                })
                .collect();
            let mut meta_only = spec.clone();
            meta_only.tensors.clear();
            let meta = meta_only.header();
            let meta = &meta[1..meta.len() - 1];
            let mut header = format!(
                "{{{}}}",
                [vec![meta.to_string()], entries].concat().join(",")
            );
            // Escape some characters inside strings as \u escapes.
            for at in escapes {
                let spots: Vec<usize> = header
                    .char_indices()
                    .filter(|&(i, c)| {
                        let inside = header[..i].matches('"').count() % 2 == 1;
                        let in_escape = header.as_bytes()[i.saturating_sub(5)..i].contains(&b'\\');
                        c.is_ascii_alphabetic() && inside && !in_escape
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !spots.is_empty() {
                    let i = spots[at.index(spots.len())];
                    let c = header.as_bytes()[i];
                    header.replace_range(i..i + 1, &format!("\\u{:04x}", c));
                }
            }
            // Whitespace between tokens: after a structural character outside strings.
            for (at, blank) in blanks {
                let spots: Vec<usize> = header
                    .char_indices()
                    .filter(|&(i, c)| {
                        "{}[],:".contains(c) && header[..i].matches('"').count() % 2 == 0
                    })
                    .map(|(i, _)| i + 1)
                    .collect();
                let i = spots[at.index(spots.len())];
                header.insert_str(i, blank);
            }
            let data: Vec<u8> = spec.tensors.iter().flat_map(|t| t.data.clone()).collect();
            assemble(&header, &data)
        })
}

/// Headers built from the format's own tokens in random order, with a random data section:
/// mostly invalid JSON or invalid safetensors, sometimes neither.
fn random_header() -> impl Strategy<Value = Vec<u8>> {
    let tokens = vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\"",
        "\\",
        "\"emb.weight\"",
        "\"layers.0.weight\"",
        "\"__metadata__\"",
        "\"dtype\"",
        "\"F32\"",
        "\"I8\"",
        "\"shape\"",
        "\"data_offsets\"",
        "\"format\"",
        "\"namegen-folded\"",
        "\"vocab\"",
        "\".ab\"",
        "\"\\u00e9\"",
        "\"\\ud83d\"",
        "0",
        "1",
        "4",
        "80",
        "-1",
        "1.5",
        "1e3",
        "null",
        "true",
        "é",
    ];
    (
        prop::collection::vec(prop::sample::select(tokens), 0..40),
        prop::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(tokens, data)| assemble(&tokens.concat(), &data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mutated_files_never_accepted_against_safetensors(
        dtype in dtype(),
        seed in 0..4u64,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = FileSpec::folded(dtype, seed).to_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        agree(&bytes);
    }

    #[test]
    fn rewritten_files_load_alike(bytes in rewritten_file()) {
        prop_assert!(agree(&bytes), "a legal rewrite was refused: {:?}", ModelView::parse(&bytes).err());
    }

    #[test]
    fn random_headers_never_accepted_against_safetensors(bytes in random_header()) {
        agree(&bytes);
    }
}

/// The fuzz target's seed corpus is the valid files above, so it starts from every dtype and
/// header form the loader accepts. `NAMEGEN_WRITE_FUZZ_SEEDS=1` rewrites it from them.
#[test]
fn fuzz_seeds_are_the_valid_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/load");
    let write = std::env::var_os("NAMEGEN_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut expected = Vec::new();
    for (name, bytes) in valid_files() {
        let path = dir.join(name.replace(' ', "-"));
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is stale or missing: rerun with NAMEGEN_WRITE_FUZZ_SEEDS=1",
            path.display()
        );
        expected.push(path);
    }
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "{} holds other files", dir.display());
}

/// The models shipped in `data/` load alike; anything else there (the unfolded checkpoint)
/// is refused, whatever `safetensors` says.
#[test]
fn shipped_files_read_alike() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "safetensors") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let folded = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("model-");
        assert_eq!(agree(&bytes), folded, "{}", path.display());
    }
}
