//! Shared helpers of the integration tests: small, fast datasets and recipes.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::path::{Path, PathBuf};

use namegen_files::dataset::Dataset;
use namegen_host::trainer::Recipe;

/// The repository's names file.
pub fn names_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/names.txt")
}

/// The first `count` names of data/names.txt, as a dataset (fast to split and evaluate).
pub fn small_dataset(count: usize) -> Dataset {
    let text = std::fs::read_to_string(names_path()).expect("data/names.txt is readable");
    let head: Vec<&str> = text.lines().take(count).collect();
    Dataset::parse(Path::new("small.txt"), head.join("\n").as_bytes()).expect("valid names")
}

/// The default recipe, shortened to `steps` steps.
pub fn short_recipe(steps: u64) -> Recipe {
    Recipe {
        steps,
        ..Recipe::default()
    }
}
