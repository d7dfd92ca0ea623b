//! Vocabulary, encoding and windowing on ordinary and odd inputs.

use namegen_model::vocab::VocabError;
use namegen_model::{Context, END_INDEX, MAX_VOCAB, Vocabulary, windows};

fn encode(vocab: &Vocabulary, name: &str) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = vocab.encode_name(name, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn default_names_give_dot_then_a_to_z() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/names.txt")).unwrap();
    let vocab = Vocabulary::from_names(text.lines()).unwrap();
    assert_eq!(vocab.to_string(), ".abcdefghijklmnopqrstuvwxyz");
    assert_eq!(vocab.len(), 27);
    assert_eq!(vocab.encode('a'), Ok(1));
    assert_eq!(vocab.encode('z'), Ok(26));
    assert_eq!(vocab.decode(26), Ok('z'));
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert_eq!(longest, 15);
}

#[test]
fn order_of_names_does_not_matter_and_symbols_are_sorted() {
    let a = Vocabulary::from_names(["zoé", "anna-lena", "Ökke"]).unwrap();
    let b = Vocabulary::from_names(["Ökke", "zoé", "anna-lena"]).unwrap();
    assert_eq!(a, b);
    // '-' (0x2D) < 'a' < 'z' < 'Ö' (0xD6) < 'é' (0xE9), after '.' at index 0.
    assert_eq!(a.to_string(), ".-aeklnozÖé");
    assert_eq!(Vocabulary::from_symbols(&a.to_string()), Ok(a.clone()));
    assert_eq!(a.encode('é'), Ok(10));
    assert_eq!(a.decode(a.encode('Ö').unwrap()), Ok('Ö'));
}

#[test]
fn unknown_characters_are_named() {
    let vocab = Vocabulary::from_names(["abc"]).unwrap();
    assert_eq!(vocab.encode('q'), Err(VocabError::UnknownChar('q')));
    let mut buf = [0u8; 8];
    let err = vocab.encode_name("cab!", &mut buf).unwrap_err();
    assert_eq!(err, VocabError::UnknownChar('!'));
    assert!(err.to_string().contains("'!'"), "{err}");
    assert_eq!(vocab.decode(4), Err(VocabError::UnknownIndex(4)));
}

#[test]
fn terminator_control_characters_and_overflow_are_rejected() {
    assert_eq!(
        Vocabulary::from_names(["a.b"]),
        Err(VocabError::TerminatorInName)
    );
    assert_eq!(
        Vocabulary::from_names(["a\tb"]),
        Err(VocabError::ControlChar('\t'))
    );
    let vocab = Vocabulary::from_names(["ab"]).unwrap();
    assert_eq!(
        vocab.encode_name("a.b", &mut [0; 8]),
        Err(VocabError::TerminatorInName)
    );
    assert_eq!(
        vocab.encode_name("abab", &mut [0; 3]),
        Err(VocabError::NameTooLong { max: 3 })
    );

    let many: String = (0..MAX_VOCAB as u32 - 1)
        .map(|i| char::from_u32(0x100 + i).unwrap())
        .collect();
    let full = Vocabulary::from_names([many.as_str()]).unwrap();
    assert_eq!(full.len(), MAX_VOCAB);
    let mut over = full.clone();
    assert_eq!(over.insert('a'), Err(VocabError::TooLarge { ch: 'a' }));
    assert_eq!(
        over.insert('\u{100}'),
        Ok(()),
        "a known symbol fits even when full"
    );
}

#[test]
fn stored_form_is_validated() {
    assert_eq!(
        Vocabulary::from_symbols("abc"),
        Err(VocabError::MissingTerminator)
    );
    assert_eq!(
        Vocabulary::from_symbols(""),
        Err(VocabError::MissingTerminator)
    );
    assert_eq!(
        Vocabulary::from_symbols(".acb"),
        Err(VocabError::NotAscending { index: 3 })
    );
    assert_eq!(
        Vocabulary::from_symbols(".aa"),
        Err(VocabError::NotAscending { index: 2 })
    );
    assert_eq!(
        Vocabulary::from_symbols(".a.b"),
        Err(VocabError::TerminatorInName)
    );
    assert_eq!(Vocabulary::from_symbols(".").map(|v| v.len()), Ok(1));
}

#[test]
fn a_name_gives_len_plus_one_windows() {
    let vocab = Vocabulary::from_names(["emma"]).unwrap();
    let name = encode(&vocab, "emma");
    let got: Vec<(String, char)> = windows(&name, 3)
        .map(|(ctx, target)| {
            let ctx: String = ctx
                .ids()
                .iter()
                .map(|&i| vocab.decode(i).unwrap())
                .collect();
            (ctx, vocab.decode(target).unwrap())
        })
        .collect();
    let expected = [
        ("...", 'e'),
        ("..e", 'm'),
        (".em", 'm'),
        ("emm", 'a'),
        ("mma", '.'),
    ];
    assert_eq!(got, expected.map(|(c, t)| (c.to_string(), t)));
}

#[test]
fn one_letter_and_longest_names() {
    let vocab = Vocabulary::from_names(["a", "muhammadibrahim"]).unwrap();
    let one = encode(&vocab, "a");
    let w: Vec<_> = windows(&one, 3)
        .map(|(c, t)| (c.ids().to_vec(), t))
        .collect();
    assert_eq!(w, vec![(vec![0, 0, 0], 1), (vec![0, 0, 1], END_INDEX)]);

    let long = encode(&vocab, "muhammadibrahim");
    assert_eq!(long.len(), 15);
    let w: Vec<_> = windows(&long, 3).collect();
    assert_eq!(w.len(), 16);
    assert_eq!(windows(&long, 3).len(), 16);
    assert_eq!(w[15].0.ids(), &long[12..15]);
    assert_eq!(w[15].1, END_INDEX);
    // Block sizes longer than the name pad with '.' on the left.
    let w16: Vec<_> = windows(&long, 16).collect();
    assert_eq!(w16[15].0.ids()[0], END_INDEX);
    assert_eq!(&w16[15].0.ids()[1..], &long[..]);
}

#[test]
fn empty_name_gives_one_window() {
    let w: Vec<_> = windows(&[], 3)
        .map(|(c, t)| (c.ids().to_vec(), t))
        .collect();
    assert_eq!(w, vec![(vec![0, 0, 0], END_INDEX)]);
}

#[test]
fn a_context_keeps_the_last_block_size_symbols_oldest_first() {
    for block_size in [1, 2, 3, namegen_model::config::MAX_BLOCK_SIZE] {
        let mut context = Context::start(block_size);
        let mut expected = vec![END_INDEX; block_size];
        for id in 1..=20 {
            context.push(id);
            expected.remove(0);
            expected.push(id);
            assert_eq!(context.ids(), expected, "block size {block_size}");
        }
    }
}

#[test]
fn the_stored_form_is_read_by_the_compiler_as_at_run_time() {
    // One symbol of each UTF-8 length, read in a const (as a firmware's static view is).
    const STORED: Result<Vocabulary, VocabError> = Vocabulary::from_symbols(".aé€😀");
    let symbols = ['.', 'a', 'é', '€', '😀'];
    assert_eq!(STORED, Vocabulary::from_chars(symbols.into_iter()));
    assert_eq!(STORED.map(|v| v.symbols().to_vec()), Ok(symbols.to_vec()));
    // Every character: refused as a control character exactly when `char::is_control` says so,
    // the same way from the stored form as one by one.
    for ch in (0..=0x10ffff)
        .filter_map(char::from_u32)
        .filter(|&ch| ch != '.')
    {
        let stored = Vocabulary::from_symbols(&format!(".{ch}"));
        assert_eq!(
            stored,
            Vocabulary::from_chars(['.', ch].into_iter()),
            "{ch:?}"
        );
        assert_eq!(
            stored == Err(VocabError::ControlChar(ch)),
            ch.is_control(),
            "{ch:?}"
        );
    }
}
