#!/usr/bin/env bash
# Idle cost at fleet scale: graced over a generated tree of N GPU functions (default 4096), started,
# left alone for SECONDS (default 60) after its first answer; prints its CPU (% of one core) and RSS,
# with the safety-net rescan of a uevent-driven host (300 s) and the health watch's default look every
# 5 s, the same without the health watch (its share), and with the old 5 s rescan.
#
#   bench/idle.sh [N=4096] [SECONDS=60]
source "$(dirname "$0")/common.sh"
N=${1:-4096}
SECONDS_IDLE=${2:-60}
build_release
WORK=$(mktemp -d /tmp/grace-idle-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
machine
"$BIN/grace-bench" make-tree "$N" "$WORK/tree"
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for RUN in 300:5 300:0 5:5; do
    INTERVAL=${RUN%:*} HEALTH=${RUN#*:}
    PORT=$(free_port)
    "$BIN/graced" serve --sysfs "$WORK/tree" --listen "127.0.0.1:$PORT" --no-auth --db "$WORK/db-$RUN" \
        --rescan-interval "$INTERVAL" --health-interval "$HEALTH" --log-level error &
    PID=$!
    wait_for_200 "http://127.0.0.1:$PORT/gpus"
    # A first start records a row and a layout per GPU after the first answer: wait until the last
    # GPU's layout is recorded, so that the window below is idle.
    until python3 - "http://127.0.0.1:$PORT" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
last = json.load(urllib.request.urlopen(base + "/gpus"))["items"][-1]["bdf"]
sys.exit(0 if json.load(urllib.request.urlopen(f"{base}/gpus/{last}/layout"))["snapshots"] else 1)
PY
    do sleep 1; done
    BEFORE=$(cpu_ticks $PID)
    sleep "$SECONDS_IDLE"
    AFTER=$(cpu_ticks $PID)
    RSS=$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$PID/status")
    echo "$N GPUs, rescan every $INTERVAL s, health look every $HEALTH s (0: off): idle CPU $(awk -v t=$((AFTER - BEFORE)) -v hz="$TICKS" -v s="$SECONDS_IDLE" 'BEGIN{printf "%.2f", 100*t/hz/s}') % of a core over $SECONDS_IDLE s, RSS $RSS MB"
    kill $PID; wait $PID 2>/dev/null || true
done
