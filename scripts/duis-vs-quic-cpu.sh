#!/usr/bin/env bash
# Server CPU per request: DUIS XML over HTTPS vs binary envelopes over QUIC (issue 12's
# end-to-end figure).
#
# Starts one `dcc-router serve` (release build, temporary data dir, free loopback ports, QUIC
# and DUIS over HTTPS), then runs the same loadgen scenario at the same fixed rate over each
# ingress in turn, ROUNDS times alternating (quic, https, quic, https, …). For each run it
# reads the server's user+system CPU time from /proc/PID/stat (utime + stime, in clock ticks)
# just before and just after loadgen, and divides by the requests loadgen got answers to:
#
#   server CPU per request = (Δutime + Δstime) / CLK_TCK / answered
#
# A DUIS "request" is one scenario request: a critical one (CV 5–7) is two HTTPS round trips
# (its transform, CV 4, then the Signed Pre-Command), as a DUIS User sends it. Every answer is
# signed with the router's DCC XML-signing key (the router signs nothing over QUIC).
# The server's idle cost over a run (timers) is included in both; it is small next to the load.
#
# Usage: scripts/duis-vs-quic-cpu.sh
#
# Environment:
#   RATE         requests per second of each run (default 1000; below the server's capacity)
#   RUN_SECONDS  length of each run (default 15)
#   ROUNDS       alternating quic/https pairs (default 3)
#   SCENARIO     loadgen scenario (default steady)
#   WORKERS      the server's verify workers (default 1)
#   SERVE_ARGS   more `serve` flags, e.g. `--in-memory` (no durable store: the ingresses' and
#                the pipeline's cost without the per-request anti-replay fsync group commit)
#   PIN          1 (default when nproc >= 2): server on CPU 0, loadgen on CPU 1
#   TEMPLATES    --duis-templates for loadgen (default ../shared/vectors/dccboxed/templates,
#                else builtin)
#   NO_BUILD     1: use the binaries already built (skip cargo)
#   BIN_DIR      where the binaries are (default target/release)
#   KEEP         1: keep the temporary directory (server log, reports)
set -euo pipefail

cd "$(dirname "$0")/.."

rate="${RATE:-1000}"
run_s="${RUN_SECONDS:-15}"
rounds="${ROUNDS:-3}"
scenario="${SCENARIO:-steady}"
workers="${WORKERS:-1}"
ncpu="$(nproc)"
pin="${PIN:-$([ "$ncpu" -ge 2 ] && echo 1 || echo 0)}"
templates="${TEMPLATES:-../shared/vectors/dccboxed/templates}"
[ "$templates" = builtin ] || [ -d "$templates" ] || templates=builtin

if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "building release binaries (dcc-router, loadgen)..."
    cargo build --release -q -p dcc-router -p loadgen
fi
bin="${BIN_DIR:-target/release}"
router="$bin/dcc-router"
loadgen="$bin/loadgen"
if [ "$pin" = 1 ]; then
    on_server=(taskset -c 0)
    on_client=(taskset -c 1)
else
    on_server=()
    on_client=()
fi

tmp="$(mktemp -d -t duis-vs-quic.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

data="$tmp/data"
RUST_LOG=warn "${on_server[@]}" "$router" serve --data-dir "$data" --listen 127.0.0.1:0 \
    --duis 127.0.0.1:0 --metrics '' --workers "$workers" ${SERVE_ARGS:-} \
    >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
quic="" https=""
for _ in $(seq 1 600); do
    quic="$(sed -n 's/^dcc-router listening on quic:\/\/\([0-9.:]*\).*/\1/p' "$tmp/server.out")"
    https="$(sed -n 's/^  DUIS *https:\/\/\([0-9.:]*\)\/.*/\1/p' "$tmp/server.out")"
    [ -n "$quic" ] && [ -n "$https" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
    sleep 0.1
done
[ -n "$https" ] || { echo "server did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
sleep 0.5
pki="$data/pki"
clk="$(getconf CLK_TCK)"
echo "server pid $server_pid: quic://$quic, https://$https; workers $workers${SERVE_ARGS:+, $SERVE_ARGS};" \
    "templates $templates"
echo "machine: $ncpu CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
    "pinning $([ "$pin" = 1 ] && echo "server CPU 0, loadgen CPU 1" || echo off)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The server's utime + stime in clock ticks (fields 14 and 15; its name has no spaces).
ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }

# run KIND N: one loadgen run; prints "answered ok cpu_ticks".
run() {
    local target
    case "$1" in
    quic) target="quic://$quic" ;;
    https) target="https://$https" ;;
    esac
    local t0 t1
    t0="$(ticks)"
    "${on_client[@]}" "$loadgen" -q --json -s "$scenario" --rate "$rate" --duration "${run_s}s" \
        --target "$target" --admin "$quic" --pki "$pki" --duis-templates "$templates" \
        >"$tmp/$1-$2.json" 2>"$tmp/$1-$2.err" || true
    t1="$(ticks)"
    if [ ! -s "$tmp/$1-$2.json" ]; then
        cat "$tmp/$1-$2.err" >&2
        exit 1
    fi
    jq -r --arg cpu "$((t1 - t0))" \
        '"\([.lanes[].answered] | add) \([.lanes[].ok] | add) \($cpu)"' "$tmp/$1-$2.json"
}

declare -A answered=([quic]=0 [https]=0) okc=([quic]=0 [https]=0) cpu=([quic]=0 [https]=0)
printf '%-6s %5s %9s %9s %9s %14s\n' kind round answered ok cpu_s "µs/request"
for r in $(seq 1 "$rounds"); do
    for kind in quic https; do
        read -r a o c <<<"$(run "$kind" "$r")"
        answered[$kind]=$((answered[$kind] + a))
        okc[$kind]=$((okc[$kind] + o))
        cpu[$kind]=$((cpu[$kind] + c))
        printf '%-6s %5s %9s %9s %9.2f %14.1f\n' "$kind" "$r" "$a" "$o" \
            "$(echo "$c / $clk" | bc -l)" "$(echo "$c / $clk * 1000000 / $a" | bc -l)"
        sleep 1
    done
done
q="$(echo "${cpu[quic]} / $clk * 1000000 / ${answered[quic]}" | bc -l)"
h="$(echo "${cpu[https]} / $clk * 1000000 / ${answered[https]}" | bc -l)"
echo
echo "date $(date -u +%FT%TZ); scenario $scenario at $rate/s, ${run_s} s x $rounds rounds each;" \
    "server workers $workers${SERVE_ARGS:+, $SERVE_ARGS}"
printf 'server CPU per request: quic %.1f µs, https (DUIS XML) %.1f µs; https/quic %.2fx\n' "$q" "$h" \
    "$(echo "$h / $q" | bc -l)"
printf 'ok: quic %s of %s, https %s of %s\n' "${okc[quic]}" "${answered[quic]}" "${okc[https]}" "${answered[https]}"
