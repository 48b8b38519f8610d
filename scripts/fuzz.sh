#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) and runs each for a short time from its
# committed seed corpus, printing how many inputs each one executed.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Stable toolchain only: the targets are instrumented with LLVM's
# SanitizerCoverage through plain codegen flags (what cargo-fuzz passes,
# without its nightly-only sanitizers) and linked with libFuzzer from
# libfuzzer-sys. New inputs found go to a temporary corpus, so the committed
# seeds stay small; a crash leaves its input in fuzz/artifacts/<target>/ and
# fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(cid_list actions_body jobs_cursor legacy_row)
fi

# Its own target folder: other flags than the main build, which they would
# otherwise invalidate.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags off build scripts and procedural macros.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0"

start=$(date +%s)
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" --bins
echo "fuzz build: $(($(date +%s) - start)) s"

work=$(mktemp -d /tmp/tms-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

summary=""
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "fuzz/artifacts/$t"
    log="$work/$t.log"
    status=0
    "$CARGO_TARGET_DIR/$host/release/$t" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" \
        "$work/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$status" != 0 ]; then
        failed=1
        echo "==> $t FAILED (exit $status); the input is in fuzz/artifacts/$t/:" >&2
        grep -v '^#\|^INFO\|^stat::' "$log" | tail -n 40 >&2
    fi
    summary+=$(printf '%-14s %4s s %12s executions%s' "$t" "$seconds" "${runs:-?}" \
        "$([ "$status" = 0 ] || echo '  CRASH')")$'\n'
done

printf '\nfuzz targets:\n%s' "$summary"
exit "$failed"
