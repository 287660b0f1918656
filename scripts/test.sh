#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: installs what the
# tests need (Debian's clang and wasi-libc, to compile the C example app),
# builds the examples, and runs the workspace's tests in the dev profile —
# the same profile clippy checks, so CI builds the dependencies once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build-examples.sh
cargo test --workspace --locked "$@"
