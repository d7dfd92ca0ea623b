#!/bin/sh
# Builds the WASM module and puts the static page together: www/ + namegen.wasm and
# namegen-simd.wasm + a model, all plain copies (no bundler, no generated JS). Usage, from anywhere:
#   sampler/wasm/site.sh [OUT_DIR [MODEL]]
# OUT_DIR defaults to target/www and MODEL to data/model-f32.safetensors (repository-relative);
# CARGO_TARGET_DIR is honoured. Serve OUT_DIR over HTTP, e.g. python3 -m http.server -d OUT_DIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/www}
model=${2:-$root/data/model-f32.safetensors}
target_dir=${CARGO_TARGET_DIR:-$here/target}
# Two builds of the module: plain, and with SIMD128 kernels (its own target directory, so that
# neither rebuilds the other); the page loads the SIMD one where the engine runs SIMD.
(cd "$here" && CARGO_TARGET_DIR=$target_dir cargo build --release --target wasm32-unknown-unknown)
(cd "$here" && CARGO_TARGET_DIR=$target_dir/simd128 RUSTFLAGS="-C target-feature=+simd128" \
    cargo build --release --target wasm32-unknown-unknown)
mkdir -p "$out"
cp "$here"/www/index.html "$here"/www/app.js "$here"/www/namegen.js "$here"/www/style.css "$out"/
cp "$target_dir"/wasm32-unknown-unknown/release/namegen_wasm.wasm "$out"/namegen.wasm
cp "$target_dir"/simd128/wasm32-unknown-unknown/release/namegen_wasm.wasm "$out"/namegen-simd.wasm
cp "$model" "$out"/model.safetensors
echo "site in $out: serve it over HTTP, e.g. python3 -m http.server -d $out 8000"
