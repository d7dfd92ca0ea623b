#!/usr/bin/env bash
# The whole test suite, on a machine that has only the Rust toolchain: installs what the tests
# need (rustup targets, QEMU, Chromium, the page test's npm packages), then checks formatting
# and lints, builds the no_std crates for the device targets and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustup targets and components"
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
    thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf wasm32-unknown-unknown
rustup component add rustfmt clippy

step "Debian packages: QEMU (Arm, RISC-V) for the firmware tests, Chromium, Node and npm for the WASM tests"
# Only the missing ones: a machine whose Node.js comes from NodeSource already has npm, and
# Debian's npm package conflicts with that nodejs.
missing=()
need() { command -v "$1" >/dev/null || missing+=("$2"); }
need qemu-system-arm qemu-system-arm
need qemu-system-riscv32 qemu-system-misc
need chromium chromium
need node nodejs
need npm npm
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    # A machine may carry a newer qemu-utils (qemu-img) from backports, which breaks the
    # distribution's qemu-system-common; take the qemu-utils of the QEMU being installed.
    if [[ " ${missing[*]} " == *" qemu-system-"* ]] && dpkg -s qemu-utils >/dev/null 2>&1; then
        qemu=$(apt-cache policy qemu-system-common | awk '/Candidate:/ {print $2}')
        missing+=("qemu-utils=$qemu")
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades "${missing[@]}"
fi

step "npm packages for the WASM page and package tests (playwright-core, typescript)"
(cd tests/web && npm ci --no-audit --no-fund)

step "numpy and safetensors for the Python interop test"
python3 -m pip install --quiet -r tests/requirements.txt

step "formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Broken intra-doc links and malformed doc comments fail here, not in a reader's browser.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "no_std, no allocator: the contract and the sampler on device targets"
for target in thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
    thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf wasm32-unknown-unknown; do
    cargo build -p namegen-model -p namegen-sampler --target "$target"
done
# The defmt feature (Format for the errors, Name and Settings) with every default feature; a
# library build, so it needs no defmt linker script.
cargo build -p namegen-sampler --target thumbv7m-none-eabi --features defmt
# With an allocator and without std: the batched generator too.
cargo build -p namegen-sampler --target wasm32-unknown-unknown --no-default-features \
    --features f32,f16,i8,q8,log-likelihood,alloc
# The sampler's q8 kernels for each Cortex-M family, linted: the firmware workspace's clippy
# below compiles the sampler as a dependency and lints only the firmware, so its DSP assembly
# (src/q8/dsp.rs), its ARMv7-M assembly (src/q8/armv7m.rs) and the Cortex-M0's portable
# path are linted here, with the features the firmware gives them; and the contract's
# Cortex-M0 requantisation (model/src/q8.rs), which compiles only for ARMv6-M.
for kernel in thumbv7em-none-eabihf:q8,dsp thumbv7m-none-eabi:q8,armv7m thumbv6m-none-eabi:q8; do
    cargo clippy -p namegen-sampler --target "${kernel%%:*}" --no-default-features \
        --features "${kernel#*:}" -- -D warnings
done
cargo clippy -p namegen-model --target thumbv6m-none-eabi -- -D warnings

step "firmware: formatting, lints for every device target, a build of every machine (its own workspace, sampler/firmware)"
(
    cd sampler/firmware
    export CARGO_TARGET_DIR="$PWD/../../target/devices"
    cargo fmt --check
    for target in thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
        thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf; do
        cargo clippy --release --target "$target" --bins -- -D warnings
    done
    # q8 alone: on thumbv7em that compiles the sampler's DSP kernel (sampler/src/q8/dsp.rs), on
    # thumbv7m with the `armv7m` feature its ARMv7-M assembly (sampler/src/q8/armv7m.rs; no
    # effect where `dsp` is on).
    for target in thumbv7em-none-eabihf thumbv7m-none-eabi; do
        NAMEGEN_MODEL=data/model-q8.safetensors cargo clippy --release \
            --target "$target" --bins --no-default-features --features q8,armv7m -- -D warnings
    done
    # Each machine's binary for its own target, with the default (i8) model; the tests build
    # and run every machine with every dtype that fits it.
    for machine in lm3s6965evb:thumbv7m-none-eabi lm3s811evb:thumbv7m-none-eabi \
        mps2-an386:thumbv7em-none-eabihf microbit:thumbv6m-none-eabi \
        mps2-an500:thumbv7em-none-eabihf mps2-an505:thumbv8m.main-none-eabihf \
        riscv32-virt:riscv32imc-unknown-none-elf; do
        cargo build --release --target "${machine#*:}" --bin "${machine%%:*}"
    done
)

step "WASM module: formatting and lints (its own workspace, sampler/wasm)"
(
    cd sampler/wasm
    export CARGO_TARGET_DIR="$PWD/../../target/devices"
    cargo fmt --check
    cargo clippy --release --target wasm32-unknown-unknown -- -D warnings
    # The SIMD128 build (the sampler's src/simd128/ compiles only there), in its own directory
    # as package.sh and the tests build it.
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/simd128" RUSTFLAGS="-C target-feature=+simd128" \
        cargo clippy --release --target wasm32-unknown-unknown -- -D warnings
)

step "the batched generator with alloc and without std: formatting, lints, its test (its own workspace, sampler/alloc-only)"
(
    cd sampler/alloc-only
    export CARGO_TARGET_DIR="$PWD/../../target/devices"
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    cargo test
)

step "fuzz targets: formatting (they build with nightly and cargo-fuzz: sampler/fuzz/README.md, files/fuzz/README.md)"
rustfmt --check --edition 2024 sampler/fuzz/fuzz_targets/*.rs files/fuzz/fuzz_targets/*.rs

step "tests"
cargo test --workspace

step "the library crates as a user gets them: cargo package (built from the .crate files), the example program"
# Verified in a target directory of its own, emptied first: cargo treats the packaged model as
# a registry crate, whose build it never rechecks for changes, so a second run in a shared one
# builds the sampler against the model as it was the first time. The packaged model's sources
# are extracted once into the cargo home, in a directory named for that target directory, and
# reused by every later run whatever changed: removed too.
rm -rf target/package-check "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/namegen-model-*
cargo package --target-dir target/package-check -p namegen-model -p namegen-sampler
cargo run -p namegen-sampler --example names

step "device size and speed report (figures in sampler/firmware/README.md)"
cargo run --release -p namegen-tests --bin device-report
