#!/bin/sh
# Builds the WASM module and assembles the npm package `namegen-wasm`: pkg/ plus the module as
# namegen.wasm, plain copies (no bundler, no generated JS). Usage, from anywhere:
#   sampler/wasm/package.sh [OUT_DIR]
# OUT_DIR defaults to target/namegen-wasm (repository-relative); CARGO_TARGET_DIR is honoured.
# Then `npm pack OUT_DIR` makes the tarball; site.sh serves OUT_DIR as the page's namegen/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/namegen-wasm}
target_dir=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && CARGO_TARGET_DIR=$target_dir cargo build --release --target wasm32-unknown-unknown)
mkdir -p "$out"
cp "$here"/pkg/* "$out"/
cp "$target_dir"/wasm32-unknown-unknown/release/namegen_wasm.wasm "$out"/namegen.wasm
echo "package in $out: npm pack $out makes the tarball"
