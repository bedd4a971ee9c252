#!/usr/bin/env bash
# Build the browser package and its demo into target/web/: index.html, the JS glue, the .wasm.
# A static, self-contained site (no CDN; works offline): serve target/web/ with any static
# server, e.g. `python3 -m http.server -d target/web 8000`. README "WebAssembly".
#
# Needs the wasm32-unknown-unknown target (added here) and wasm-bindgen-cli at the version of
# the wasm-bindgen crate in Cargo.lock (installed here with cargo when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TENSORCV_WEB_OUT:-target/web}
# dist: fat LTO, cold dependencies for size (the Cargo.toml profile the static binaries use):
# 10.9 MB / 3.4 MB gzip against release's 19.6 / 5.4
profile=${TENSORCV_WEB_PROFILE:-dist}

want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found: ${have:-none})" >&2
  # without its default TLS features (nothing here downloads): half the build
  cargo install --quiet --no-default-features wasm-bindgen-cli --version "$want"
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

# SIMD128 and the stack size come from .cargo/config.toml
cargo build --locked --profile "$profile" --target wasm32-unknown-unknown -p tensorcv-web
wasm=target/wasm32-unknown-unknown/$profile/tensorcv_web.wasm

rm -rf "$out"
mkdir -p "$out/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" "$wasm"
cp web/src/index.html web/src/demo.js web/src/demo.css web/src/tensorcv.js web/src/worker.js "$out/"

# the size report: the module, and the built-in models compiled into it
bg=$out/pkg/tensorcv_web_bg.wasm
raw=$(stat -c %s "$bg")
gz=$(gzip -9c "$bg" | wc -c)
models=$(awk -F'"' '/builtin!\(/ {print "models/" $4 "." $6}' crates/zoo/src/lib.rs)
models_raw=$(cat $models | wc -c)
models_gz=$(for m in $models; do gzip -9c "$m"; done | wc -c)
{
  echo "tensorcv_web_bg.wasm: $raw bytes, $gz gzip -9"
  echo "built-in models in it: $models_raw bytes, $models_gz gzip -9"
  echo "without the models: about $((raw - models_raw)) bytes, $((gz - models_gz)) gzip -9"
} | tee "$out/SIZE.txt"
echo "built $out/ (serve it with any static server: python3 -m http.server -d $out 8000)"
