#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (with the address sanitizer) and runs each one for a bounded
# time over its committed seed corpus. Fails when a target crashes, and says where the input is.
#
#   scripts/fuzz.sh [seconds per target, default 45] [target ...]   (targets: bdf config-space ...)
#
# New inputs that a run finds go to fuzz/.build/fuzz-corpus/<target>/ (kept between runs, never
# committed); crash inputs to fuzz/artifacts/<target>/. Replay one with
#   fuzz/.build/debug/fuzz-<target> fuzz/artifacts/<target>/crash-...
# and make it a regression test (README, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-45}"
shift || true
all=(bdf config-space resource-file request-body host-capture request-head router)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all[@]}")
fi

# Every module is instrumented: libFuzzer's coverage has to see inside Passthrough and GraceAPI, not
# only the small target that calls them. Swift's -sanitize=fuzzer alone links libFuzzer without
# adding coverage, hence the explicit -sanitize-coverage.
build=(swift build -c debug --package-path fuzz --sanitize fuzzer --sanitize address
    -Xswiftc -sanitize-coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table)
echo "== fuzz: building ${#targets[@]} targets"
mkdir -p fuzz/.build
"${build[@]}" >fuzz/.build/fuzz-build.log 2>&1 || { grep -E 'error:' fuzz/.build/fuzz-build.log; exit 1; }
if grep -E '^/.*/fuzz/Sources/.*: warning:' fuzz/.build/fuzz-build.log; then
    echo "Warnings in the fuzz targets: fix them."
    exit 1
fi
tail -n 1 fuzz/.build/fuzz-build.log
bin="$("${build[@]}" --show-bin-path)"

# A Swift trap is the finding; the Swift backtracer would only slow the report down.
export SWIFT_BACKTRACE=enable=no

failed=()
for target in "${targets[@]}"; do
    seeds="fuzz/corpus/$target"
    [ -d "$seeds" ] || { echo "no seed corpus at $seeds"; exit 2; }
    work="fuzz/.build/fuzz-corpus/$target"
    artifacts="fuzz/artifacts/$target"
    log="fuzz/.build/fuzz-$target.log"
    mkdir -p "$work" "$artifacts"
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    dict="fuzz/dictionaries/$target.dict"
    [ -f "$dict" ] && options+=(-dict="$dict")
    echo "== fuzz: $target for ${seconds}s"
    # The first folder receives what the run finds; the committed seeds are only read.
    if "$bin/fuzz-$target" "${options[@]}" "$work" "$seeds" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done ' "$log" | tail -n 2 || true
    else
        echo "fuzz-$target FAILED:"
        grep -E 'Fatal error|ERROR: |SUMMARY|deadly signal|Test unit written to' "$log" | head -n 20 || true
        echo "   log: $log"
        echo "   replay: $bin/fuzz-$target <the input written above>"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
