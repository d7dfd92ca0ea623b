#!/bin/sh
# Builds the WASM module (both builds) and puts the static page together: www/ + the npm package
# (as namegen/, by package.sh) + a model, all plain copies (no bundler, no generated JS). Usage,
# from anywhere:
#   sampler/wasm/site.sh [OUT_DIR [MODEL]]
# OUT_DIR defaults to target/www and MODEL to data/model-f32.safetensors (repository-relative);
# CARGO_TARGET_DIR is honoured. Serve OUT_DIR over HTTP, e.g. python3 -m http.server -d OUT_DIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/www}
model=${2:-$root/data/model-f32.safetensors}
"$here"/package.sh "$out/namegen" >/dev/null
cp "$here"/www/index.html "$here"/www/app.js "$here"/www/style.css "$out"/
cp "$model" "$out"/model.safetensors
echo "site in $out: serve it over HTTP, e.g. python3 -m http.server -d $out 8000"
