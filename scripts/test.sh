#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: installs what the
# tests need (Debian's clang and wasi-libc, to compile the C example app, and
# promtool, to check the /metrics exposition),
# builds the examples, and runs the workspace's tests in the dev profile —
# the same profile clippy checks, so CI builds the dependencies once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build-examples.sh

# promtool (Debian's `prometheus` package) checks the live /metrics
# exposition in crates/dwcp/tests/metrics.rs. The package's service is not
# started where there is no init system.
if ! command -v promtool >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]]; then
        echo "test.sh: installing promtool (Debian package prometheus)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends prometheus >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
    else
        echo "test.sh: promtool is missing; install Debian's prometheus package (as root: apt-get install prometheus)" >&2
        exit 1
    fi
fi

cargo test --workspace --locked "$@"
