#!/usr/bin/env bash
# scripts/gateway-connections.sh DWCP [N] — what idle keep-alive connections
# cost one `dwcp up` node, and whether it keeps them.
#
# A lab measurement beside `dwcp bench gateway`'s connection series (which
# samples the node's memory once, the moment its hold worker holds N): it
# starts one node from the binary DWCP on 127.0.0.77, has the same hold
# worker (`DWCP bench gateway --hold-worker`) open N connections (default
# 19,500), each after one answered GET /hello, and prints the node's
# resident memory growth per connection when they are held, 3 s later
# before and after glibc's `malloc_trim(0)` (through gdb, if installed:
# memory freed by connections that were parked is then returned, which
# shows what a held connection still costs), and at 5, 15 and 30 s with
# the node's open descriptors (whether the node still holds them).
set -euo pipefail

BIN="$(realpath "$1")"
N="${2:-19500}"
IP=127.0.0.77
DIR="$(mktemp -d /tmp/gateway-connections.XXXX)"
ulimit -n "$(ulimit -Hn)"
"$BIN" up --data-dir "$DIR/data" --listen "$IP:17071" --api "$IP:17070" \
    --gateway "$IP:18080" >"$DIR/node.log" 2>&1 &
NODE=$!
trap 'kill "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 600); do
    curl -s -o /dev/null -w '%{http_code}' "http://$IP:18080/hello" 2>/dev/null | grep -q 200 && break
    sleep 0.2
done
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$NODE/status"; }
fds() { ls "/proc/$NODE/fd" | wc -l; }
BEFORE=$(rss_kb)
FDS_BEFORE=$(fds)
echo "before: rss ${BEFORE} KiB, ${FDS_BEFORE} descriptors"
mkfifo "$DIR/in"
"$BIN" bench gateway --hold-worker "http://$IP:18080/hello" --connections "$N" \
    <"$DIR/in" >"$DIR/held" 2>"$DIR/worker.log" &
WORKER=$!
exec 3>"$DIR/in"
for _ in $(seq 1 3000); do [ -s "$DIR/held" ] && break; sleep 0.1; done
per() { echo $(( ($1 - BEFORE) * 1024 / N )); }
NOW=$(rss_kb)
echo "held: $(cat "$DIR/held")"
echo "held: rss ${NOW} KiB, $(per "$NOW") bytes per connection, $(( $(fds) - FDS_BEFORE )) connections open"
sleep 3
NOW=$(rss_kb)
echo "+3 s: rss ${NOW} KiB, $(per "$NOW") bytes per connection"
if command -v gdb >/dev/null; then
    gdb -p "$NODE" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
    NOW=$(rss_kb)
    echo "+3 s after malloc_trim(0): rss ${NOW} KiB, $(per "$NOW") bytes per connection"
fi
for t in 5 15 30; do
    sleep $(( t == 5 ? 2 : (t == 15 ? 10 : 15) ))
    NOW=$(rss_kb)
    echo "+$t s: rss ${NOW} KiB, $(per "$NOW") bytes per connection, $(( $(fds) - FDS_BEFORE )) connections open"
done
exec 3>&-
wait "$WORKER"
