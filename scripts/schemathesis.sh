#!/usr/bin/env bash
# Schemathesis (PyPI) against a live `dwcp up`'s /api/v1/openapi.json: every
# operation, with the founder's admin token, every check (no 5xx, status
# codes, content types, headers and bodies as the document says, schema-
# valid requests accepted and invalid ones refused).
#
#   scripts/schemathesis.sh [MAX_EXAMPLES [more schemathesis run flags]]
#   scripts/schemathesis.sh ci      # the short run of scripts/test.sh
#
# MAX_EXAMPLES (default 20) bounds the cases per operation and phase.
# `ci` is a short run that fails the build on any finding: 3 examples per
# operation, the fuzzing and stateful phases, seed 16, every check. Both
# load scripts/schemathesis_hooks.py: it mends valid-by-the-document data
# into data valid by the rules no JSON Schema states (a time after now, a
# WebAssembly module's bytes, TOML bodies, parameters that depend on each
# other) and drops only the refusals docs/security.md justifies (exactly
# their status, code and field). The
# node is a fresh one-node cluster on 127.0.93.1 (API :7070, gateway
# 127.0.93.2:8080) in a temporary directory, started from DWCP (default
# target/debug/dwcp, built if missing) and stopped at the end. Schemathesis
# comes from SCHEMATHESIS, else PATH, else a virtualenv under
# target/schemathesis made with pip. The exit status is schemathesis's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

examples="${1:-20}"
shift || true
if [[ "$examples" == ci ]]; then
    examples=3
    set -- --phases fuzzing,stateful "$@"
fi
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
dwcp="${DWCP:-target/debug/dwcp}"
[[ -x "$dwcp" ]] || cargo build -p dwcp

# The version every figure in docs/security.md was measured with.
SCHEMATHESIS_VERSION=4.32.5
st="${SCHEMATHESIS:-}"
if [[ -z "$st" ]]; then
    if command -v schemathesis >/dev/null 2>&1 \
        && schemathesis --version | grep -qF "$SCHEMATHESIS_VERSION"; then
        st=schemathesis
    else
        venv=target/schemathesis
        if [[ ! -x "$venv/bin/schemathesis" ]]; then
            echo "schemathesis.sh: installing schemathesis into $venv (pip)" >&2
            python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
        fi
        st="$PWD/$venv/bin/schemathesis"
    fi
fi

work="$(mktemp -d)"
node=""
cleanup() {
    if [[ -n "$node" ]]; then
        kill "$node" 2>/dev/null || true
        wait "$node" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

api=127.0.93.1:7070
"$dwcp" up --data-dir "$work/node" --listen 127.0.93.1:7071 --api "$api" \
    --gateway 127.0.93.2:8080 >"$work/stdout" 2>"$work/stderr" &
node=$!
token=""
for _ in $(seq 1 600); do
    token="$(sed -n 's/^admin token: //p' "$work/stdout" | head -n 1)"
    [[ -n "$token" ]] && break
    kill -0 "$node" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$token" ]] || { echo "schemathesis.sh: no admin token within 60 s" >&2; exit 1; }

# From the temporary directory: schemathesis keeps its cache in the
# working directory.
cd "$work"
"$st" run "http://$api/api/v1/openapi.json" \
    --wait-for-schema 60 \
    -H "Authorization: Bearer $token" \
    --checks all \
    --max-examples "$examples" \
    --workers 1 \
    --request-timeout 30 \
    --seed 16 \
    "$@"
