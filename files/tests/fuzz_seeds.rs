//! The fuzz targets' seeds (`files/fuzz/seeds`) are valid inputs, so that fuzzing starts from
//! files the readers accept.

use std::path::{Path, PathBuf};

use namegen_files::checkpoint::Checkpoint;
use namegen_files::dataset::Dataset;

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    paths
}

#[test]
fn every_seed_is_accepted() {
    for path in seeds("names_file") {
        Dataset::load(&path).unwrap_or_else(|e| panic!("{e}"));
    }
    for path in seeds("checkpoint") {
        let checkpoint = Checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // What the fuzz target asserts of every accepted file.
        let written = checkpoint.to_bytes();
        assert_eq!(Checkpoint::from_bytes(&path, &written).unwrap(), checkpoint);
    }
}
