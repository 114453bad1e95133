#!/usr/bin/env bash
# Fuzz smoke: builds every cargo-fuzz target and runs each for FUZZ_SECONDS (default 10).
# Needs a nightly toolchain (`cargo +nightly`); without one, or if cargo-fuzz cannot be
# installed, it prints one "fuzz smoke skipped: …" line and succeeds.
# Exit status: non-zero when a target crashes (target and artifact named) or does not build.
#
# Targets are built with `--sanitizer none`: the crates forbid unsafe code, and an
# AddressSanitizer build of this dependency tree takes several times longer on a 2-core
# machine. For long runs, AddressSanitizer is still available: `cargo +nightly fuzz run T`.
set -uo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-10}"
FLAGS=(--sanitizer none)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke skipped: no nightly toolchain (cargo +nightly --version failed)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    t0=$(date +%s)
    if ! cargo install cargo-fuzz --locked --quiet >/tmp/fuzz-smoke-install.$$ 2>&1; then
        echo "fuzz smoke skipped: cargo install cargo-fuzz failed ($(tail -n 1 /tmp/fuzz-smoke-install.$$))"
        rm -f /tmp/fuzz-smoke-install.$$
        exit 0
    fi
    rm -f /tmp/fuzz-smoke-install.$$
    echo "fuzz smoke: cargo-fuzz installed in $(($(date +%s) - t0)) s"
fi

t0=$(date +%s)
if ! cargo +nightly fuzz build "${FLAGS[@]}"; then
    echo "fuzz smoke: FAILED to build the fuzz targets"
    exit 1
fi
echo "fuzz smoke: targets built in $(($(date +%s) - t0)) s"

status=0
for target in $(cargo +nightly fuzz list); do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    dirs=("$corpus")
    [ -d "seeds/$target" ] && dirs+=("seeds/$target")
    log="artifacts/$target/smoke.log"
    if cargo +nightly fuzz run "${FLAGS[@]}" "$target" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 >"$log" 2>&1; then
        echo "fuzz smoke: $target ok ($(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -n 1))"
    else
        status=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        echo "fuzz smoke: $target CRASHED; artifact: ${artifact:-none written}; log: fuzz/$log"
        grep -m 5 -E "panicked at|ERROR: libFuzzer|assertion" "$log" | sed 's/^/    /'
    fi
done
exit "$status"
