#!/bin/sh
# Builds the WASM module twice and assembles the npm package `namegen-wasm`: pkg/ plus the two
# builds as namegen.wasm (plain) and namegen-simd.wasm (SIMD128 kernels; namegen.js loads it
# where the engine runs SIMD), plain copies (no bundler, no generated JS). Usage, from anywhere:
#   sampler/wasm/package.sh [OUT_DIR]
# OUT_DIR defaults to target/namegen-wasm (repository-relative); CARGO_TARGET_DIR is honoured.
# Then `npm pack OUT_DIR` makes the tarball; site.sh serves OUT_DIR as the page's namegen/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/namegen-wasm}
target_dir=${CARGO_TARGET_DIR:-$here/target}
# The SIMD128 build has a target directory of its own, so that neither build rebuilds the other.
(cd "$here" && CARGO_TARGET_DIR=$target_dir cargo build --release --target wasm32-unknown-unknown)
(cd "$here" && CARGO_TARGET_DIR=$target_dir/simd128 RUSTFLAGS="-C target-feature=+simd128" \
    cargo build --release --target wasm32-unknown-unknown)
mkdir -p "$out"
cp "$here"/pkg/* "$out"/
cp "$target_dir"/wasm32-unknown-unknown/release/namegen_wasm.wasm "$out"/namegen.wasm
cp "$target_dir"/simd128/wasm32-unknown-unknown/release/namegen_wasm.wasm "$out"/namegen-simd.wasm
echo "package in $out: npm pack $out makes the tarball"
