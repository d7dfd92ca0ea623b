//! Any bytes as a names file: the reader must never panic, and whatever it accepts must keep
//! its promises: trimmed names without `.` or control characters, each encoded in a vocabulary
//! of at most 128 symbols, enough of them for the split, and lines accounted for.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use namegen_files::dataset::{Dataset, SplitExamples};

fuzz_target!(|bytes: &[u8]| {
    let Ok(dataset) = Dataset::parse(Path::new("fuzz.txt"), bytes) else {
        return;
    };
    assert!(dataset.vocab.len() <= namegen_model::MAX_VOCAB);
    assert!(dataset.names.len() + dataset.skipped <= dataset.lines);
    assert_eq!(dataset.encoded.len(), dataset.names.len());
    for (name, encoded) in dataset.names.iter().zip(&dataset.encoded) {
        assert!(!name.is_empty() && name.trim() == name);
        assert!(!name.contains('.') && !name.chars().any(char::is_control));
        let decoded: String = encoded
            .iter()
            .map(|&id| {
                dataset
                    .vocab
                    .decode(id)
                    .expect("an index of the vocabulary")
            })
            .collect();
        assert_eq!(&decoded, name);
    }
    let examples = SplitExamples::new(&dataset, 42, 3).expect("an accepted file splits");
    let symbols: usize = dataset.names.iter().map(|n| n.chars().count() + 1).sum();
    assert_eq!(
        examples.train.len() + examples.val.len() + examples.test.len(),
        symbols
    );
});
