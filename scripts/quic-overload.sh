#!/usr/bin/env bash
# `loadgen -s overload` over QUIC against a real `dcc-router serve`, as a performance engineer
# runs it, with the CPU each process spent per request (from /proc/PID/stat).
#
# Usage: scripts/quic-overload.sh [SERVE_ARGS...]
#   scripts/quic-overload.sh --workers 1                      # the router's default verifier
#   scripts/quic-overload.sh --workers 1 --verifier p256      # 2-core machines (BENCHMARKS.md)
#   POPULATION=national SCENARIO=steady scripts/quic-overload.sh --workers 1
#
# Environment:
#   SCENARIO      loadgen scenario (default overload; e.g. steady)
#   LOADGEN_ARGS  extra loadgen arguments (e.g. "--rate 5000" or "-d 10s")
#   KEEP_DIR      keep the server's data dir and logs here instead of a temporary dir
#   POPULATION    "national": the server's first start creates 200 Suppliers, 20 network
#                 operators, 2 signing certificates each (plus the demo Users), and the demo
#                 devices default to 1,000,000 (issue 15.4); the server's per-address
#                 connection cap is raised for loadgen's 224 connections from 127.0.0.1
#   DEVICES       demo devices (serve --demo-devices and loadgen --devices alike)
#
# Builds the release binaries first (cargo decides whether anything is stale). The server runs
# in memory (no fsync in the figures) with DUIS and metrics off; the exit status is loadgen's
# (0 only when every expectation held).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p dcc-router -p loadgen
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

dir="${KEEP_DIR:-$(mktemp -d)}"
mkdir -p "$dir"
port=$((20000 + RANDOM % 20000))
population=()
case "${POPULATION:-}" in
    "") ;;
    national)
        # loadgen opens one QUIC connection per User (224 here, plus the admin), all from
        # 127.0.0.1: above the server's default cap per address (64).
        printf '[limits]\nmax_connections_per_source = 1024\n' \
            >"$dir/national.toml"
        population=(--config "$dir/national.toml" --demo-suppliers 200
            --demo-network-operators 20 --demo-certs-per-user 2)
        DEVICES="${DEVICES:-1000000}"
        ;;
    *) echo "POPULATION=$POPULATION: only \"national\" is known" >&2; exit 2 ;;
esac
devices=()
[ -z "${DEVICES:-}" ] || devices=(--devices "$DEVICES")
started=$(date +%s.%N)
"$bin/dcc-router" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --in-memory \
    --duis '' --metrics '' ${population[@]+"${population[@]}"} \
    ${DEVICES:+--demo-devices "$DEVICES"} "$@" >"$dir/serve.log" 2>&1 &
server=$!
# Wait for the server to be gone (it drains, and its worker finishes what is queued): a run
# started right after must not calibrate its capacity beside the last one's server.
stop_server() {
    kill "$server" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    [ -n "${KEEP_DIR:-}" ] || rm -rf "$dir"
}
trap stop_server EXIT
# A national PKI and a million devices take a while to create on a small machine.
for _ in $(seq 1 3000); do
    grep -q "listening on" "$dir/serve.log" && break
    kill -0 "$server" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.1
done
grep -E "verify|capacity" "$dir/serve.log" | head -2
echo "serve: listening after $(python3 -c "import time; print(f'{time.time() - $started:.1f}')") s"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks "$server")
set +e
# shellcheck disable=SC2086
/usr/bin/env time -f "%U %S" -o "$dir/loadgen.time" "$bin/loadgen" -s "${SCENARIO:-overload}" \
    --target "quic://127.0.0.1:$port" --pki "$dir/data/pki" ${devices[@]+"${devices[@]}"} \
    ${LOADGEN_ARGS:-} >"$dir/loadgen.txt" 2>&1
status=$?
set -e
after=$(ticks "$server")
grep "^loadgen: population" "$dir/loadgen.txt" || true
sed -n '/^rate:/,$p' "$dir/loadgen.txt"
sent=$(sed -n 's/^generator: [0-9]* scheduled, \([0-9]*\) sent.*/\1/p' "$dir/loadgen.txt")
read -r lu ls < <(tail -n 1 "$dir/loadgen.time")
python3 - "$sent" "$before" "$after" "$hz" "$lu" "$ls" <<'PY'
import sys
sent, before, after, hz, lu, ls = sys.argv[1:]
sent = max(int(sent or 0), 1)
server = (int(after) - int(before)) / int(hz)
gen = float(lu) + float(ls)
print(f"cpu: server {server:.2f} s = {server / sent * 1e6:.1f} µs/request; "
      f"loadgen {gen:.2f} s = {gen / sent * 1e6:.1f} µs/request (setup and signing ahead included); "
      f"{sent} requests")
PY
exit $status
