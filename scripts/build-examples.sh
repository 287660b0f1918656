#!/usr/bin/env bash
# scripts/build-examples.sh — builds the C example(s) under examples/ to wasm.
#
# Compiles examples/wagi/hello.c into examples/build/wagi-hello.wasm (a WASI
# preview1 command module, WAGI app), examples/wagi/env.c into
# examples/build/wagi-env.wasm and examples/wasi/files.c into
# examples/build/files.wasm with Debian's clang + wasi-libc.
# On Debian the wasi-libc "sysroot" is /usr (headers in
# /usr/include/wasm32-wasi, libraries in /usr/lib/wasm32-wasi); clang's
# compiler-rt builtins for wasm32 come from libclang-rt-14-dev-wasm32.
# If the toolchain is missing and we run as root, it is installed with apt-get;
# otherwise the script stops with an explanation. Safe to rerun.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/examples/wagi/hello.c"
OUT_DIR="$ROOT/examples/build"
OUT="$OUT_DIR/wagi-hello.wasm"

CLANG="${CLANG:-clang}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
APT_PACKAGES=(clang lld wasi-libc libclang-rt-14-dev-wasm32)

toolchain_ok() {
    command -v "$CLANG" >/dev/null 2>&1 || return 1
    command -v wasm-ld >/dev/null 2>&1 || command -v wasm-ld-14 >/dev/null 2>&1 \
        || command -v ld.lld >/dev/null 2>&1 || return 1
    [[ -f "$WASI_SYSROOT/include/wasm32-wasi/stdio.h" ]] || return 1
    [[ -f "$WASI_SYSROOT/lib/wasm32-wasi/libc.a" ]] || return 1
    [[ -f "$WASI_SYSROOT/lib/wasm32-wasi/crt1-command.o" || -f "$WASI_SYSROOT/lib/wasm32-wasi/crt1.o" ]] || return 1
    # compiler-rt builtins for wasm32 (libclang-rt-*-dev-wasm32)
    local rt
    rt="$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null || true)"
    [[ -n "$rt" && -f "$rt" ]] || return 1
    return 0
}

if ! toolchain_ok; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "build-examples: wasm toolchain missing; installing ${APT_PACKAGES[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
        if ! toolchain_ok; then
            echo "build-examples: error: toolchain still incomplete after install" >&2
            echo "  need: $CLANG, wasm-ld, $WASI_SYSROOT/{include,lib}/wasm32-wasi, wasm32 compiler-rt" >&2
            exit 1
        fi
    else
        echo "build-examples: error: the wasm32-wasi C toolchain is missing." >&2
        echo "  need: $CLANG, wasm-ld, wasi-libc under $WASI_SYSROOT/{include,lib}/wasm32-wasi," >&2
        echo "        and clang's wasm32 compiler-rt builtins." >&2
        echo "  On Debian 12, as root: apt-get install -y --no-install-recommends ${APT_PACKAGES[*]}" >&2
        echo "  (or set CLANG / WASI_SYSROOT to another toolchain)" >&2
        exit 1
    fi
fi

mkdir -p "$OUT_DIR"
build() {
    local src="$1" out="$2"
    local cmd=("$CLANG" --target=wasm32-wasi "--sysroot=$WASI_SYSROOT" -O2 -o "$out" "$src")
    echo "build-examples: ${cmd[*]}"
    "${cmd[@]}"
    echo "build-examples: built $out ($(wc -c <"$out") bytes)"
}
build "$SRC" "$OUT"
build "$ROOT/examples/wasi/files.c" "$OUT_DIR/files.wasm"
build "$ROOT/examples/wagi/env.c" "$OUT_DIR/wagi-env.wasm"

# The microVM tier's programs (examples/microvm): static x86-64 Linux
# executables, each built twice, with musl (musl-gcc, Debian's musl-tools)
# and with glibc (gcc -static), into examples/build/microvm/NAME.{musl,glibc}.
MICROVM_SRC="$ROOT/examples/microvm"
MICROVM_OUT="$OUT_DIR/microvm"
if ! command -v musl-gcc >/dev/null 2>&1 || [[ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]]; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "build-examples: static C toolchains missing; installing musl-tools libc6-dev" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends musl-tools libc6-dev gcc
    else
        echo "build-examples: error: musl-gcc (Debian: musl-tools) and a static glibc (libc6-dev) are needed" >&2
        echo "  for examples/microvm; as root: apt-get install -y --no-install-recommends musl-tools libc6-dev" >&2
        exit 1
    fi
fi
mkdir -p "$MICROVM_OUT"
for src in "$MICROVM_SRC"/*.c "$MICROVM_SRC"/hostile/*.c; do
    name="$(basename "$src" .c)"
    for libc in musl glibc; do
        out="$MICROVM_OUT/$name.$libc"
        if [[ "$libc" == musl ]]; then cc=(musl-gcc -static); else cc=(gcc -static); fi
        cmd=("${cc[@]}" -O2 -o "$out" "$src")
        echo "build-examples: ${cmd[*]}"
        "${cmd[@]}"
    done
done
# The wasm example's C source as a microVM program too, so that `dwcp bench
# microvm` serves the same app logic on both tiers through the gateway.
cmd=(musl-gcc -static -O2 -o "$MICROVM_OUT/wagi-hello.musl" "$SRC")
echo "build-examples: ${cmd[*]}"
"${cmd[@]}"
echo "build-examples: built $(ls "$MICROVM_OUT" | wc -l) microvm programs in $MICROVM_OUT"
