#!/usr/bin/env bash
# What a bearer token costs per request: graced's instructions per `GET /gpus` (user space, counted
# by valgrind's callgrind, so the machine's load does not move them) without credentials
# (--no-auth) and with a viewer token, in one process, with token files of 1, 3 and 10 records
# (graced hashes the presented token once per record).
#
#   bench/token-cost.sh [REQUESTS=4000] [GPUS=6]
#
# graced runs under callgrind with --no-auth and --tokens on loopback (a request without
# Authorization is served as no-auth admin, one with a token is verified), the health watch and
# rescans off; counters are zeroed after a warm-up, then REQUESTS requests of one kind are sent
# by `grace-bench http-load` (16 connections) and the counters dumped, for each kind in turn, the
# no-auth kind before and after the token one (their difference shows the noise).
source "$(dirname "$0")/common.sh"
REQUESTS=${1:-4000}
GPUS=${2:-6}
command -v valgrind >/dev/null || apt-get install -y --no-install-recommends valgrind
build_release
WORK=$(mktemp -d /tmp/grace-token-cost.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
machine
echo "commit $(cd "$REPO" && git rev-parse --short HEAD); $REQUESTS requests per figure, $GPUS GPUs, valgrind $(valgrind --version)"
"$BIN/grace-bench" make-tree "$GPUS" "$WORK/tree"
# valgrind 3.19 cannot read the Swift toolchain's debug info ("possibly corrupted debuginfo"): a
# copy without it runs the same code.
strip -g "$BIN/graced" -o "$WORK/graced"

# Instructions per request over REQUESTS requests of one kind: zero, load, dump, read the total.
per_request() {
    local pid=$1 port=$2 header=${3:-} file
    callgrind_control -z "$pid" >/dev/null 2>&1
    "$BIN/grace-bench" http-load "127.0.0.1:$port" --connections 16 --threads 1 --requests "$REQUESTS" \
        ${header:+--header "$header"} /gpus >"$WORK/load.out"
    grep -q "statuses=200:$REQUESTS\$" "$WORK/load.out" || { echo "unexpected answers: $(cat "$WORK/load.out")" >&2; exit 1; }
    rm -f "$WORK"/callgrind.out.*
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 0.5
    file=$(ls -t "$WORK"/callgrind.out.* | head -1)
    awk -v n="$REQUESTS" '/^summary:|^totals:/{print int($2 / n); exit}' "$file"
}

for RECORDS in 1 3 10; do
    TOKENS="$WORK/tokens-$RECORDS"
    VIEWER=$("$BIN/graced" token create --tokens "$TOKENS" --name bench-viewer --role viewer 2>/dev/null)
    for i in $(seq 2 "$RECORDS"); do
        "$BIN/graced" token create --tokens "$TOKENS" --name "other-$i" --role operator >/dev/null 2>&1
    done
    PORT=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
        "$WORK/graced" serve --sysfs "$WORK/tree" --listen "127.0.0.1:$PORT" --no-auth --tokens "$TOKENS" \
        --db "$WORK/db-$RECORDS.sqlite" --rescan-interval 0 --health-interval 0 --mutations-per-minute 0 \
        --max-connections-per-client 0 --log-level error 2>"$WORK/valgrind-$RECORDS.log" &
    PID=$!
    wait_for_200 "http://127.0.0.1:$PORT/gpus"
    # Warm-up of both paths (first requests fill caches and grow pools).
    "$BIN/grace-bench" http-load "127.0.0.1:$PORT" --connections 16 --threads 1 --requests 1000 /gpus >/dev/null
    "$BIN/grace-bench" http-load "127.0.0.1:$PORT" --connections 16 --threads 1 --requests 1000 \
        --header "Authorization: Bearer $VIEWER" /gpus >/dev/null
    NOAUTH=$(per_request "$PID" "$PORT")
    TOKEN=$(per_request "$PID" "$PORT" "Authorization: Bearer $VIEWER")
    NOAUTH2=$(per_request "$PID" "$PORT")
    echo "$RECORDS token record(s): no-auth $NOAUTH and $NOAUTH2 instructions/request, viewer token $TOKEN: the token costs $((TOKEN - (NOAUTH + NOAUTH2) / 2))"
    kill "$PID"; wait "$PID" 2>/dev/null || true
done
