#!/usr/bin/env bash
# QUIC Initial flood against a real `dcc-router serve`: does a flood of credential-less
# connection attempts hurt the Users' traffic? (issue 11, item 1)
#
# Starts `dcc-router serve --workers 1` on a temporary data dir and a free loopback port, then
# runs the same loadgen `steady` run over QUIC (quiet output, JSON report) three times:
#
#   quiet     no flood
#   flood-a   loadgen connects first, the flood starts 1 s later (established connections)
#   flood-b   the flood starts first, loadgen connects 1 s into it (new connections too)
#
# and prints, side by side, the ok share and L1 p99 of each, their ratio to the quiet run,
# what the flooder saw (Initials sent, Retries received), the server's connections gauge
# during the flood, and whether `dcc-router admin status` succeeded during each flood.
# Goal (issue 11): during the flood, >= 99 % ok and L1 p99 within 3x of the quiet run.
#
# Usage: scripts/initial-flood.sh
#
# Environment:
#   FLOOD_RATE      strangers (new connection attempts) per second (default 1100)
#   FLOOD_MODE      retry | silent | open (default retry; see router/examples/initial_flood.rs)
#   FLOOD_HOLD_MS   how long each stranger lives before vanishing (default 5000)
#   FLOOD_SOURCE    the strangers' source address (default 127.0.0.1, the Users' own: they
#                   then share max_connections_per_source; 127.0.0.2 leaves only the global caps)
#   RUN_SECONDS     length of each loadgen run (default 12)
#   LOAD_RATE       loadgen requests per second (default: the steady scenario's, 1000)
#   PIN             1 (default when nproc >= 2): server on CPU 0, loadgen and flooder on CPU 1
#   FLOOD_CPU       the flooder's CPU when pinned (default 1, with loadgen; 0 puts its cost on
#                   the server's CPU instead)
#   KEEP            1: keep the temporary directory (server log, reports)
#   NO_BUILD        1: use the binaries already built (skip cargo)
#   BIN_DIR         where the binaries are (default target/release; a copy keeps a concurrent
#                   build from replacing them mid-run)
#
# Exit status 0 when both flood runs met the goal and admin status succeeded, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."

flood_rate="${FLOOD_RATE:-1100}"
flood_mode="${FLOOD_MODE:-retry}"
flood_hold="${FLOOD_HOLD_MS:-5000}"
flood_source="${FLOOD_SOURCE:-127.0.0.1}"
run_s="${RUN_SECONDS:-12}"
load_rate="${LOAD_RATE:-}"
ncpu="$(nproc)"
pin="${PIN:-$([ "$ncpu" -ge 2 ] && echo 1 || echo 0)}"

if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "building release binaries (dcc-router, loadgen, example initial_flood)..."
    cargo build --release -q -p dcc-router -p loadgen
    cargo build --release -q -p dcc-router --example initial_flood
fi
bin="${BIN_DIR:-target/release}"
router="$bin/dcc-router"
loadgen="$bin/loadgen"
flooder="$bin/examples/initial_flood"
[ -x "$flooder" ] || flooder="$bin/initial_flood"

flood_cpu="${FLOOD_CPU:-1}"
if [ "$pin" = 1 ]; then
    on_server=(taskset -c 0)
    on_client=(taskset -c 1)
    on_flood=(taskset -c "$flood_cpu")
else
    on_server=()
    on_client=()
    on_flood=()
fi

tmp="$(mktemp -d -t initial-flood.XXXXXX)"
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
"${on_server[@]}" "$router" serve --data-dir "$data" --listen 127.0.0.1:0 \
    --metrics 127.0.0.1:0 --workers 1 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
addr=""
for _ in $(seq 1 600); do
    addr="$(sed -n 's/^dcc-router listening on quic:\/\/\([0-9.:]*\).*/\1/p' "$tmp/server.out")"
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
sleep 0.2
metrics="$(sed -n 's/^  metrics *\(http:[^ ]*\).*/\1/p' "$tmp/server.out")"
pki="$data/pki"
echo "server quic://$addr (pid $server_pid, workers 1, metrics ${metrics:-none}), pki $pki"
echo "machine: $ncpu CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
    "pinning $([ "$pin" = 1 ] && echo "server CPU 0, loadgen CPU 1, flooder CPU $flood_cpu" || echo off)"

connections() {
    [ -n "$metrics" ] || { echo "?"; return; }
    curl -s --max-time 1 "$metrics" | sed -n 's/^dcc_router_connections \([0-9]*\)$/\1/p' || echo "?"
}

# run_load NAME: one loadgen steady run, JSON report in $tmp/NAME.json.
run_load() {
    local extra=()
    [ -n "$load_rate" ] && extra+=(--rate "$load_rate")
    "${on_client[@]}" "$loadgen" -q --json -s steady --duration "${run_s}s" "${extra[@]}" \
        --target "quic://$addr" --pki "$pki" >"$tmp/$1.json" 2>"$tmp/$1.err" || true
}

# admin_check NAME: `admin status` during the flood; result in $tmp/NAME.admin.
admin_check() {
    local t0 rc
    t0=$(date +%s%N)
    set +e
    timeout 20 "$router" admin --server "$addr" --pki "$pki" status >"$tmp/$1.admin.out" 2>&1
    rc=$?
    set -e
    echo "rc=$rc $((($(date +%s%N) - t0) / 1000000)) ms" >"$tmp/$1.admin"
}

# flood NAME: the flooder for the run's length plus a margin.
flood() {
    "${on_flood[@]}" "$flooder" --target "$addr" --source "$flood_source" \
        --rate "$flood_rate" --mode "$flood_mode" \
        --hold-ms "$flood_hold" --duration "$((run_s + 2))" --json >"$tmp/$1.flood" 2>&1
}

# sample NAME: the server's connection gauge every second for the run.
sample() {
    for _ in $(seq 1 "$run_s"); do
        sleep 1
        connections
    done | sort -n | tail -n 1 >"$tmp/$1.conns"
}

echo "quiet run (${run_s} s)..."
run_load quiet
sleep 1

echo "flood-a: loadgen connects, then ${flood_rate} strangers/s (mode $flood_mode) for $((run_s + 2)) s..."
run_load flood-a &
load_pid=$!
sleep 1
flood flood-a &
flood_pid=$!
sample flood-a &
sample_pid=$!
sleep 3
admin_check flood-a
wait "$load_pid" "$flood_pid" "$sample_pid"
sleep 6 # stranger handshakes time out (3 s) and vanish (hold)

echo "flood-b: the flood first, loadgen connects 1 s into it..."
flood flood-b &
flood_pid=$!
sleep 1
run_load flood-b &
load_pid=$!
sample flood-b &
sample_pid=$!
sleep 3
admin_check flood-b
wait "$load_pid" "$flood_pid" "$sample_pid"

# summary NAME -> "ok_share l1_p99_ms sent" (or "- - -" when there is no report: loadgen
# could not connect).
summary() {
    [ -s "$tmp/$1.json" ] || { echo "- - -"; return; }
    jq -r '
        ([.lanes[].ok] | add) as $ok
        | (.generator.sent) as $sent
        | ([.lanes[] | select(.lane == "L1") | .corrected.p99] | first // 0) as $p99
        | "\(if $sent > 0 then $ok * 100 / $sent else 0 end) \($p99) \($sent)"
    ' "$tmp/$1.json" 2>/dev/null || echo "- - -"
}

read -r q_ok q_p99 q_sent <<<"$(summary quiet)"
echo
echo "date $(date -u +%FT%TZ); flood $flood_rate strangers/s from $flood_source, mode $flood_mode, hold $flood_hold ms;" \
    "loadgen steady ${run_s} s${load_rate:+ at $load_rate/s}"
printf '%-8s %8s %9s %12s %12s %9s %7s %s\n' run sent ok% "L1 p99 ms" "p99 x quiet" "max conns" admin flooder
status=0
for run in quiet flood-a flood-b; do
    read -r ok p99 sent <<<"$(summary "$run")"
    ratio="-"
    if [ "$run" != quiet ] && [ "$p99" != "-" ] && [ "$q_p99" != "-" ]; then
        ratio="$(awk -v a="$p99" -v b="$q_p99" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')"
        if ! awk -v ok="$ok" -v r="$ratio" 'BEGIN { exit !(ok >= 99 && r != "-" && r <= 3) }'; then
            status=1
        fi
    elif [ "$run" != quiet ]; then
        status=1
    fi
    conns="-"
    admin="-"
    fl="-"
    if [ "$run" != quiet ]; then
        conns="$(cat "$tmp/$run.conns" 2>/dev/null || echo '?')"
        admin="$(cut -d' ' -f1 "$tmp/$run.admin" | sed 's/rc=0/ok/')"
        [ "$admin" = ok ] || status=1
        fl="$(jq -r '"\(.strangers) strangers \(.strangers_per_s|floor)/s: \(.initials_sent) Initials sent, \(.retries_received) Retry received, \(.other_received) other received"' \
            "$tmp/$run.flood" 2>/dev/null || tail -n 1 "$tmp/$run.flood")"
    fi
    ok_fmt="$(awk -v x="$ok" 'BEGIN { if (x == "-") print "-"; else printf "%.2f", x }')"
    printf '%-8s %8s %9s %12s %12s %9s %7s %s\n' "$run" "$sent" "$ok_fmt" "$p99" "$ratio" "$conns" "$admin" "$fl"
    if [ "$run" != quiet ] && [ "$sent" = "-" ]; then
        echo "  loadgen: $(tail -n 3 "$tmp/$run.err" | tr '\n' ' ')"
    fi
    if [ "$run" != quiet ] && [ "$admin" != ok ]; then
        echo "  admin status: $(tail -n 2 "$tmp/$run.admin.out" | tr '\n' ' ')"
    fi
done
echo "goal: flood runs >= 99 % ok, L1 p99 <= 3x quiet, admin status ok: $([ "$status" = 0 ] && echo met || echo NOT met)"
exit "$status"
