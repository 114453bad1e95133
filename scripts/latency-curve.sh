#!/usr/bin/env bash
# Per-lane latency against offered load (issue 14.5): loadgen's in-process router at stepped
# constant rates, one short run each, then a chart made by the project's own plotter.
#
# Usage: scripts/latency-curve.sh [RATE...]     (default: 1000 2000 3000 4000 5000 6000 8000 10000 12000)
#
# Writes OUT.csv, OUT.svg (p99 of L0–L2) and OUT-ok.svg (share of each lane answered ok).
#
# Environment:
#   SCENARIO   loadgen scenario (default steady: mostly L3 reads, so overload sheds L3)
#   VERIFIER   the embedded router's verifier (default p256, so that the rates that overload one
#              2-core machine's router stay within what its generator can sign and send)
#   SECS       seconds per rate (default 5)
#   OUT        output prefix (default docs/latency-vs-load): writes OUT.csv and OUT.svg
#
# Each CSV row: offered rate, lane, p99 of successes (ms, corrected), share answered ok, busy.
set -euo pipefail
cd "$(dirname "$0")/.."

rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(1000 2000 3000 4000 5000 6000 8000 10000 12000)
scenario="${SCENARIO:-steady}"
verifier="${VERIFIER:-p256}"
secs="${SECS:-5}"
out="${OUT:-docs/latency-vs-load}"

cargo build --release -q -p loadgen
cargo build --release -q -p dcc-benches --example plot
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "rate,lane,p99_ms,ok_share,busy" >"$out.csv"
for r in "${rates[@]}"; do
    "$bin/loadgen" -s "$scenario" --verifier "$verifier" --rate "$r" -d "${secs}s" \
        --out "$work/$r" >"$work/$r.txt" 2>&1 || true   # a failed expectation still reports
    python3 - "$work/$r/report.json" "$r" >>"$out.csv" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for lane in report["lanes"]:
    answered = max(lane["answered"], 1)
    p99 = lane["corrected"]["p99"] if lane["ok"] else ""
    print(f'{sys.argv[2]},{lane["lane"]},{p99},{lane["ok"] / answered:.4f},{lane["busy"]}')
PY
    echo "rate $r: $(grep -E '^generator:' "$work/$r.txt" | cut -c1-110)"
done
# The chart's y axis is linear: L3's p99 (up to its 2 s deadline) would flatten the others, so
# the latency chart shows L0–L2 and a second chart shows every lane's share answered ok.
{ head -n 1 "$out.csv"; grep -E ',L[012],' "$out.csv"; } >"$work/priority.csv"
"$bin/examples/plot" "$work/priority.csv" "$out.svg" \
    "p99 latency of L0-L2 against offered load ($scenario, in process, $verifier)" \
    "offered load, requests per second" "p99 of successful requests, ms" 2
"$bin/examples/plot" "$out.csv" "$out-ok.svg" \
    "Share of each lane answered ok against offered load ($scenario, in process, $verifier)" \
    "offered load, requests per second" "share answered ok" 3
echo "wrote $out.csv, $out.svg and $out-ok.svg"
