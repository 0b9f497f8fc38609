#!/usr/bin/env bash
# Runs the Swift test suite N times in a row (default 20) against one build, and prints every
# failing test with the run it failed in. With --hog, both cores are kept busy by another process
# for the whole time (a busy-loop per core at normal priority), as on a loaded CI machine.
#
#   scripts/test-repeat.sh 20           # twenty runs on a quiet machine
#   scripts/test-repeat.sh 10 --hog     # ten runs while both cores are busy
#   scripts/test-repeat.sh 5 --skip-build --filter Jobs
#
# Exit status: 0 when every run passed, 1 otherwise. A log of each run is kept in
# .build-repeat/run-N.log.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20
hog=false
build=true
filter=()
while [ $# -gt 0 ]; do
    case "$1" in
        --hog) hog=true ;;
        --skip-build) build=false ;;
        --filter) filter=(--filter "$2"); shift ;;
        [0-9]*) runs="$1" ;;
        *) echo "usage: $0 [N] [--hog] [--skip-build] [--filter REGEX]" >&2; exit 2 ;;
    esac
    shift
done

if $build; then swift build --build-tests >/dev/null; fi

hogs=()
stop_hogs() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_hogs EXIT
if $hog; then
    for _ in $(seq "$(nproc)"); do
        (while :; do :; done) &
        hogs+=("$!")
    done
    echo "== hog: ${#hogs[@]} busy loops (pids ${hogs[*]})"
fi

mkdir -p .build-repeat
failed_runs=0
for run in $(seq "$runs"); do
    log=".build-repeat/run-$run.log"
    start=$(date +%s)
    if swift test --skip-build "${filter[@]}" >"$log" 2>&1; then
        echo "run $run/$runs: passed ($(($(date +%s) - start)) s)"
    else
        failed_runs=$((failed_runs + 1))
        echo "run $run/$runs: FAILED ($(($(date +%s) - start)) s), log in $log"
        # Swift Testing marks a failed test with ✘, XCTest with "failed (".
        grep -E '✘ Test .*(recorded an issue|failed after)|error: .*XCTAssert|Test Case .* failed' "$log" \
            | sed "s/^/    run $run: /" | head -20 || true
        if ! grep -qE '✘|failed' "$log"; then tail -5 "$log" | sed "s/^/    run $run: /"; fi
    fi
done
echo "$((runs - failed_runs)) passed, $failed_runs failed"
[ "$failed_runs" -eq 0 ]
