//! Links each binary against its machine's memory map and embeds the folded model named by
//! `NAMEGEN_MODEL` (default `data/model-i8.safetensors`), after checking it with the sampler's own
//! loader so that a bad file fails the build with a clear message instead of on the device.

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every binary is named after the QEMU machine it runs on; `memory/<machine>/memory.x` is its map.
const MACHINES: [&str; 3] = ["lm3s6965evb", "lm3s811evb", "mps2-an386"];

/// The i8 model is the default because it is the only one that fits every machine.
const DEFAULT_MODEL: &str = "data/model-i8.safetensors";

fn main() -> ExitCode {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let repo = manifest.join("../..");
    for machine in MACHINES {
        let dir = manifest.join("memory").join(machine);
        println!("cargo::rerun-if-changed={}", dir.join("memory.x").display());
        // cortex-m-rt's link.x INCLUDEs `memory.x`; a per-binary search path picks which one.
        println!("cargo::rustc-link-arg-bin={machine}=-L{}", dir.display());
        println!("cargo::rustc-link-arg-bin={machine}=-Tlink.x");
    }

    println!("cargo::rerun-if-env-changed=NAMEGEN_MODEL");
    let model = match env::var_os("NAMEGEN_MODEL") {
        // Relative paths are taken from the repository root, wherever cargo was started.
        Some(path) => repo.join(path),
        None => repo.join(DEFAULT_MODEL),
    };
    println!("cargo::rerun-if-changed={}", model.display());
    match check(&model) {
        Ok(()) => {
            println!("cargo::rustc-env=NAMEGEN_MODEL_FILE={}", model.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: NAMEGEN_MODEL={}: {message}", model.display());
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    namegen_sampler::ModelView::parse(&bytes).map_err(|e| e.to_string())?;
    Ok(())
}
