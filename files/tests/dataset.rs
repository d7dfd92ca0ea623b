//! The names-file reader: what it accepts, and the error (naming file and line) for every
//! kind of bad input.

use std::path::Path;

use namegen_files::dataset::{Dataset, DatasetError, SplitExamples};

fn parse(text: &[u8]) -> Result<Dataset, DatasetError> {
    Dataset::parse(Path::new("names.txt"), text)
}

fn ten_names() -> String {
    [
        "emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
        "abigail",
    ]
    .join("\n")
}

#[test]
fn crlf_bom_blank_lines_and_spaces_are_handled() {
    let text = format!(
        "\u{feff}  emma \r\n\r\nolivia\r\n   \n{}\r\n",
        &ten_names()[12..]
    );
    let dataset = parse(text.as_bytes()).expect("accepted");
    assert_eq!(dataset.names[0], "emma");
    assert_eq!(dataset.names[1], "olivia");
    assert_eq!(dataset.names.len(), 10);
    assert_eq!(dataset.skipped, 2);
    assert!(
        dataset
            .names
            .iter()
            .all(|n| n.trim() == n && !n.contains('\r'))
    );
    assert_eq!(dataset.vocab.symbols()[0], '.');
}

#[test]
fn a_dot_inside_a_name_names_file_and_line() {
    let text = format!("{}\nann.marie\n", ten_names());
    let error = parse(text.as_bytes()).unwrap_err();
    assert!(
        matches!(error, DatasetError::BadName { line: 11, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("names.txt:11"), "{message}");
    assert!(message.contains("ann.marie"), "{message}");
}

#[test]
fn a_control_character_is_an_error() {
    let text = format!("{}\nta\tb\n", ten_names());
    let error = parse(text.as_bytes()).unwrap_err();
    assert!(
        matches!(error, DatasetError::BadName { line: 11, .. }),
        "{error:?}"
    );
}

#[test]
fn an_empty_file_is_an_error() {
    for text in ["", "\n", "\u{feff}", "  \r\n\n"] {
        let error = parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(error, DatasetError::Empty { .. }),
            "{text:?}: {error:?}"
        );
        assert!(error.to_string().contains("names.txt"));
    }
}

#[test]
fn too_few_names_for_a_split_is_an_error() {
    let error = parse(b"emma\nolivia\nava\n").unwrap_err();
    assert!(matches!(error, DatasetError::TooFew { .. }), "{error:?}");
    assert!(error.to_string().contains("3 names"), "{error}");
}

#[test]
fn a_missing_file_is_an_error() {
    let error = Dataset::load(Path::new("/nonexistent/names.txt")).unwrap_err();
    assert!(matches!(error, DatasetError::Read(_)), "{error:?}");
    assert!(error.to_string().contains("/nonexistent/names.txt"));
}

#[test]
fn an_unreadable_file_is_an_error() {
    // A directory cannot be read as a file, whoever runs the test (root included).
    let dir = tempfile::tempdir().unwrap();
    let error = Dataset::load(dir.path()).unwrap_err();
    assert!(matches!(error, DatasetError::Read(_)), "{error:?}");
}

#[test]
fn bytes_that_are_not_utf8_are_an_error() {
    let mut text = ten_names().into_bytes();
    text.extend_from_slice(b"\nbad\xff\n");
    let error = parse(&text).unwrap_err();
    assert!(
        matches!(error, DatasetError::NotUtf8 { line: 11, .. }),
        "{error:?}"
    );
}

#[test]
fn a_vocabulary_over_the_maximum_is_an_error() {
    // 200 distinct letters, 20 per name: the vocabulary overflows on some line.
    let letters: Vec<char> = (0..200u32)
        .map(|i| char::from_u32(0x100 + i).unwrap())
        .collect();
    let names: Vec<String> = letters.chunks(20).map(|c| c.iter().collect()).collect();
    let error = parse(names.join("\n").as_bytes()).unwrap_err();
    assert!(matches!(error, DatasetError::BadName { .. }), "{error:?}");
    assert!(error.to_string().contains("larger than 128"), "{error}");
}

#[test]
fn the_real_file_reads_and_splits_80_10_10() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/names.txt");
    let dataset = Dataset::load(&path).unwrap();
    assert_eq!(dataset.names.len(), 32_033);
    assert_eq!(dataset.skipped, 0);
    assert_eq!(dataset.vocab.len(), 27);
    let split = SplitExamples::new(&dataset, 42, 3).unwrap();
    // Every name gives len + 1 examples.
    let total: usize = dataset.names.iter().map(|n| n.len() + 1).sum();
    assert_eq!(
        split.train.len() + split.val.len() + split.test.len(),
        total
    );
    assert!(split.train.len() > 8 * split.val.len() * 9 / 10);
    assert_eq!(split.train.contexts.len(), 3 * split.train.len());
}

#[test]
fn a_file_past_the_bound_is_refused_before_it_is_read() {
    use namegen_files::dataset::MAX_FILE_BYTES;
    use namegen_files::input::ReadError;
    let dir = tempfile::tempdir().unwrap();
    // Sparse: one byte past the bound takes no disk space.
    let huge = dir.path().join("huge.txt");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    for path in [huge.as_path(), Path::new("/dev/zero")] {
        let error = Dataset::load(path).unwrap_err();
        assert!(
            matches!(error, DatasetError::Read(ReadError::TooLarge { limit, .. }) if limit == MAX_FILE_BYTES),
            "{error:?}"
        );
        assert!(error.to_string().contains("larger than"), "{error}");
    }
}
