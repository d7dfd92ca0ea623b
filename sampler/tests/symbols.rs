//! `Symbols`, the view's borrowed vocabulary: whether it holds a layout's stored form or a
//! parsed file's still-escaped header string, it answers as the owned `Vocabulary` of the
//! same symbols does, error for error.

mod common;

use common::{BLOCK, EMBED, FileSpec, HIDDEN, json_string};
use namegen_model::{Dtype, END, MAX_VOCAB, Vocabulary};
use namegen_sampler::{Layout, LoadError, ModelView, Symbols};

/// Stored forms whose header strings need every kind of JSON escape: `"`, `\` and `/`, and
/// characters of every UTF-8 length, the last beyond the BMP (a surrogate pair when escaped).
const STORED: [&str; 3] = [
    common::VOCAB,
    ".\"/\\azé€😀",
    ".'-AZaz\u{a0}\u{e9}\u{f6}\u{3b1}\u{4e2d}\u{10348}\u{1f600}\u{10ffff}",
];

/// The vocabulary of the model the repository ships, as its metadata says.
fn default_stored() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/model-q8.safetensors");
    let bytes = std::fs::read(path).expect("the shipped q8 model");
    FileSpec::read(&bytes)
        .metadata
        .into_iter()
        .find_map(|(key, value)| (key == "vocab").then_some(value))
        .expect("a vocab entry")
}

/// `text` as a JSON string with every character `\u`-escaped: one escape per UTF-16 unit (a
/// surrogate pair beyond the BMP), hex digits in upper case at even characters and lower case
/// at odd ones.
fn all_escaped(text: &str) -> String {
    let mut out = String::from("\"");
    for (i, ch) in text.chars().enumerate() {
        for unit in ch.encode_utf16(&mut [0; 2]) {
            let escape = if i % 2 == 0 {
                format!("\\u{unit:04X}")
            } else {
                format!("\\u{unit:04x}")
            };
            out.push_str(&escape);
        }
    }
    out + "\""
}

/// A folded model file whose header writes the vocabulary `stored` as `written` (a JSON
/// string, quotes included).
fn file_with_vocab(stored: &str, written: &str) -> Vec<u8> {
    let vocab_size = stored.chars().count();
    let spec = FileSpec::folded_with(BLOCK, EMBED, &HIDDEN, stored, Dtype::F32, vocab_size as u64);
    let header = spec.header();
    let plain = format!("\"vocab\":{}", json_string(stored));
    assert_eq!(header.matches(&plain).count(), 1, "{stored:?}");
    let header = header.replace(&plain, &format!("\"vocab\":{written}"));
    common::assemble(&header, &spec.data())
}

/// Characters to encode: every symbol, the first 0x3000 code points (controls, ASCII, Latin,
/// Greek, CJK punctuation), some emoji and the last code point.
fn probes(vocab: &Vocabulary) -> Vec<char> {
    let ranges = [
        0..0x3000,
        0x1f5f0..0x1f610,
        0x10348..0x10349,
        0x10ffff..0x110000,
    ];
    let others = ranges.into_iter().flatten().filter_map(char::from_u32);
    vocab.symbols().iter().copied().chain(others).collect()
}

/// Asserts that `symbols` answers every question as `vocab` does.
fn assert_answers_as(symbols: Symbols<'_>, vocab: &Vocabulary, what: &str) {
    assert_eq!(symbols.len(), vocab.len(), "{what}");
    assert!(!symbols.is_empty(), "{what}");
    assert_eq!(
        symbols.chars().collect::<Vec<_>>(),
        vocab.symbols(),
        "{what}"
    );
    assert_eq!(symbols.to_string(), vocab.to_string(), "{what}");
    assert_eq!(symbols.to_vocabulary(), *vocab, "{what}");
    let text = symbols.to_string();
    assert_eq!(Symbols::from_stored(&text), Ok(symbols), "{what}");

    for ch in probes(vocab) {
        assert_eq!(symbols.encode(ch), vocab.encode(ch), "{what}: {ch:?}");
    }
    for index in 0..=u8::MAX {
        assert_eq!(
            symbols.decode(index),
            vocab.decode(index),
            "{what}: {index}"
        );
    }

    let letters: String = vocab.symbols()[1..].iter().collect();
    let reversed: String = letters.chars().rev().collect();
    let names = [
        String::new(),
        letters.clone(),
        reversed,
        format!("{letters}{END}"),
        format!("{letters}\u{7}"),
        format!("{letters}#~"),
    ];
    for name in &names {
        for capacity in [0, 1, letters.chars().count(), MAX_VOCAB] {
            let (mut ours, mut theirs) = (vec![0xff; capacity], vec![0xff; capacity]);
            assert_eq!(
                symbols.encode_name(name, &mut ours),
                vocab.encode_name(name, &mut theirs),
                "{what}: {name:?} into {capacity}"
            );
            assert_eq!(ours, theirs, "{what}: {name:?} into {capacity}");
        }
    }
}

#[test]
fn borrowed_symbols_answer_as_the_vocabulary_in_every_form() {
    let default = default_stored();
    for stored in STORED.into_iter().chain([default.as_str()]) {
        let vocab = Vocabulary::from_symbols(stored).expect(stored);

        let from_layout = Symbols::from_stored(stored).expect(stored);
        assert_answers_as(from_layout, &vocab, &format!("{stored:?} stored"));

        for (how, written) in [
            ("as serde_json writes it", json_string(stored)),
            ("every character escaped", all_escaped(stored)),
        ] {
            let bytes = file_with_vocab(stored, &written);
            let view = ModelView::parse(&bytes).expect(&written);
            let what = format!("{stored:?} {how}: {written}");
            assert_answers_as(view.vocab(), &vocab, &what);
            assert_eq!(view.vocab(), from_layout, "{what}");

            let data: Vec<u8> = view.tensors().flat_map(|(_, b)| b.to_vec()).collect();
            let hidden = view.config().hidden().to_vec();
            let layout = Layout {
                dtype: view.dtype(),
                symbols: stored,
                block_size: view.config().block_size(),
                embed_dim: view.config().embed_dim(),
                hidden: &hidden,
            };
            let rebuilt = ModelView::from_layout(&layout, &data).expect(&what);
            assert_eq!(rebuilt.vocab(), view.vocab(), "{what}");
        }
    }
}

#[test]
fn a_bad_symbol_list_is_refused_as_the_vocabulary_refuses_it() {
    let too_many: String = [END]
        .into_iter()
        .chain(('\u{100}'..).take(MAX_VOCAB))
        .collect();
    let bad = [
        "", "abc", "a.", ".acb", ".aa", ".a.b", ".a\tb", ".\u{85}", ".é\"", &too_many,
    ];
    for stored in bad {
        let expected = Vocabulary::from_symbols(stored).expect_err(stored);
        assert_eq!(Symbols::from_stored(stored), Err(expected), "{stored:?}");
        // The header's escaped string, at the offset of its opening quote.
        let written = all_escaped(stored);
        let bytes = file_with_vocab(".ab", &written);
        let entry = format!("\"vocab\":{written}");
        let at_entry = bytes
            .windows(entry.len())
            .position(|w| w == entry.as_bytes());
        let offset = at_entry.expect("the vocab entry") + "\"vocab\":".len();
        match ModelView::parse(&bytes) {
            Err(LoadError::Vocab { offset: at, error }) => {
                assert_eq!(error, expected, "{written}");
                assert_eq!(at, offset, "{written}");
            }
            other => panic!("{written}: {other:?}"),
        }
    }
}

#[test]
fn debug_shows_the_decoded_symbols() {
    let stored = ".\"/\\azé€😀";
    let bytes = file_with_vocab(stored, &all_escaped(stored));
    let view = ModelView::parse(&bytes).unwrap();
    let expected = format!("Symbols({stored:?})");
    assert_eq!(format!("{:?}", view.vocab()), expected);
    assert_eq!(
        format!("{:?}", Symbols::from_stored(stored).unwrap()),
        expected
    );
}
