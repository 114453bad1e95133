#!/usr/bin/env bash
# Runs the crash/restart test (router/tests/crash.rs: SIGKILL and SIGTERM of the real
# `dcc-router serve` under load, restart, resend of every envelope) N times, and sums it up.
#
# Usage: scripts/crash-rounds.sh [N]        N runs of the test binary (default 20)
#
# Environment:
#   CRASH_ROUNDS   kill/restart rounds per test per run (default 3; the test's DCC_CRASH_ROUNDS)
#   CRASH_PROFILE  cargo profile of the binaries (default release; `dev` for a quick check)
#   CRASH_LOG_DIR  where the output of failed runs is kept (default target/crash-rounds)
#   DCC_CRASH_SEED passed through: replays one run's random choices (printed by each test)
#
# Builds the binaries first if they are missing or stale (cargo decides), then runs the test
# binary directly. Exit status 0 only if every run passed and no replay was accepted.
set -euo pipefail

cd "$(dirname "$0")/.."

runs="${1:-20}"
rounds="${CRASH_ROUNDS:-3}"
profile="${CRASH_PROFILE:-release}"
log_dir="${CRASH_LOG_DIR:-target/crash-rounds}"

case "$runs" in '' | *[!0-9]*) echo "usage: $0 [N]  (N: number of runs)" >&2; exit 2 ;; esac
case "$rounds" in '' | *[!0-9]* | 0) echo "CRASH_ROUNDS must be a positive number" >&2; exit 2 ;; esac

case "$profile" in
    release) profile_args=(--release) ;;
    dev | test) profile_args=() ;;
    *) profile_args=(--profile "$profile") ;;
esac

mkdir -p "$log_dir"
build_log="$log_dir/build.log"
echo "building the crash test and dcc-router ($profile profile, if missing or stale)..."
if ! cargo test "${profile_args[@]}" -p dcc-router --test crash --no-run >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "build failed (full log: $build_log)" >&2
    exit 1
fi
exe="$(sed -n 's/^ *Executable tests\/crash\.rs (\(.*\))$/\1/p' "$build_log" | tail -n 1)"
if [[ -z "$exe" || ! -x "$exe" ]]; then
    echo "cannot find the crash test executable in $build_log" >&2
    exit 1
fi
echo "test binary: $exe"

passed=0
failed=0
total_rounds=0
total_resent=0
total_replays=0
started=$SECONDS

summary() {
    local done=$((passed + failed))
    echo "crash-rounds: runs $done/$runs (passed $passed, failed $failed), rounds $total_rounds," \
        "envelopes resent $total_resent, replays accepted $total_replays," \
        "$((SECONDS - started)) s (CRASH_ROUNDS=$rounds, $profile)"
}
trap 'echo; echo "interrupted"; summary; exit 130' INT TERM

for ((i = 1; i <= runs; i++)); do
    out="$log_dir/run-$i.log"
    t0=$SECONDS
    set +e
    DCC_CRASH_ROUNDS="$rounds" RUST_BACKTRACE=0 "$exe" --nocapture --test-threads=2 >"$out" 2>&1
    rc=$?
    set -e
    # Each completed round prints "[kill] round 2/3: ... resent 1666: replays accepted 0, ...".
    run_rounds=0
    run_resent=0
    while read -r x; do
        run_rounds=$((run_rounds + 1))
        run_resent=$((run_resent + x))
    done < <(sed -n 's/^\[[a-z]*\] round [0-9]*\/[0-9]*:.* resent \([0-9]*\): replays accepted.*/\1/p' "$out")
    # A test that saw replays fails with "REPLAYS ACCEPTED after the restart: N".
    run_replays=0
    while read -r n; do
        run_replays=$((run_replays + n))
    done < <(sed -n 's/.*REPLAYS ACCEPTED after the restart: \([0-9]*\).*/\1/p' "$out")
    total_rounds=$((total_rounds + run_rounds))
    total_resent=$((total_resent + run_resent))
    total_replays=$((total_replays + run_replays))
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "run $i/$runs: ok      rounds $run_rounds, resent $run_resent, replays 0, $((SECONDS - t0)) s"
        rm -f "$out"
    else
        failed=$((failed + 1))
        echo "run $i/$runs: FAILED  rounds $run_rounds, replays $run_replays, exit $rc, $((SECONDS - t0)) s — output kept in $out"
        { grep -E '^\[[a-z]+\] round' "$out" || true; grep -A 8 'panicked at' "$out" || true; } |
            head -n 40 | cut -c1-300 | sed 's/^/    /'
    fi
done

summary
((failed == 0 && total_replays == 0))
