#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: installs what the
# tests need (Debian's clang and wasi-libc, to compile the C example app,
# promtool, to check the /metrics exposition, and Chromium with
# chromedriver, to test the dashboard in a browser),
# builds the examples, and runs the workspace's tests in the dev profile —
# the same profile clippy checks, so CI builds the dependencies once —
# then a short schemathesis run against a live node.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build-examples.sh

# What the tests need from Debian: promtool (package `prometheus`) checks
# the live /metrics exposition in crates/dwcp/tests/metrics.rs; Alertmanager
# (`prometheus-alertmanager`) takes the SLO alerts of tests/alertmanager.rs; Chromium
# and chromedriver drive the dashboard in crates/dwcp/tests/dashboard.rs.
# The prometheus package's service is not started where there is no init
# system.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
if (( ${#missing[@]} )); then
    if [[ "$(id -u)" -eq 0 ]]; then
        echo "test.sh: installing ${missing[*]} (Debian packages)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    else
        echo "test.sh: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

cargo test --workspace --locked "$@"

# Schemathesis (PyPI, pinned in the script, installed with pip into
# target/schemathesis) against a live `dwcp up`: a short run with a fixed
# seed that fails on any finding (docs/security.md).
python3 -c 'import ensurepip, venv' 2>/dev/null || {
    [[ "$(id -u)" -eq 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null
}
bash scripts/schemathesis.sh ci
