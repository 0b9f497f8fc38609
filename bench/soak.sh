#!/usr/bin/env bash
# Soak: graced on the simulated host with bearer tokens, on a loopback TCP listener and a Unix
# socket, driven by a mixed load of REQUESTS requests (default 1,000,000) after a warm-up; prints
# per window of WINDOW requests (default 100,000) the throughput, p99, graced's RSS, open fds,
# threads, CPU per request, database and WAL size and the rows of the tables that grow with
# traffic, then verdicts against the goals. Exits non-zero if a goal fails or graced died.
#
#   bench/soak.sh [REQUESTS=1000000] [WINDOW=100000]
#
# The load, all of it at once:
# - wrk over TCP (bench/soak.lua, -t2 -c12), 3/4 of each window: authenticated GET /gpus,
#   /gpus/{bdf}, /healthz, /metrics, /jobs, /audit with viewer, operator and admin tokens, a wrong
#   token (401), anonymous and viewer POSTs (401, 403), Connection: close;
# - `grace-bench http-load` over the Unix socket (-c8), 1/4 of each window: the same kinds, and
#   root's peer credentials without a token;
# - bench/soak-clients.py events: GET /events clients over TCP and the socket that end with
#   ?maxSeconds=1, read the preamble and leave, or resume with Last-Event-ID for 0.2 s and leave;
# - bench/soak-clients.py mutations: resets and binds (with dry runs and DELETE ?wait= cancels)
#   with the operator token over TCP and the socket and as root on the socket, each job awaited
#   with GET /jobs/{id}?wait=30.
# A window is REQUESTS of wrk and http-load together plus the side clients' few hundred.
#
# Settings (environment): SOAK_WARMUP (requests, 50000), SOAK_MUTATIONS_PER_MINUTE (600 per
# identity instead of the default 60: the operators make a few jobs a second, more than 60 a
# minute), SOAK_AUDIT_ROWS (1000), SOAK_EVENTS_ROWS (2000), SOAK_JOBS_ROWS (300),
# SOAK_PRUNE_INTERVAL (5 s): graced's retention flags, small enough that each table reaches its
# bound in the first minutes (the simulated jobs take 40 ms to 1.4 s each: ~5 jobs, ~15 audit lines
# and ~30 events a second).
source "$(dirname "$0")/common.sh"
REQUESTS=${1:-1000000}
WINDOW=${2:-100000}
WARMUP=${SOAK_WARMUP:-50000}
MUTATIONS=${SOAK_MUTATIONS_PER_MINUTE:-600}
AUDIT_ROWS=${SOAK_AUDIT_ROWS:-1000}
EVENTS_ROWS=${SOAK_EVENTS_ROWS:-2000}
JOBS_ROWS=${SOAK_JOBS_ROWS:-300}
PRUNE=${SOAK_PRUNE_INTERVAL:-5}
[ "$REQUESTS" -ge "$WINDOW" ] || { echo "REQUESTS ($REQUESTS) must be at least one WINDOW ($WINDOW)" >&2; exit 2; }
command -v wrk >/dev/null && command -v sqlite3 >/dev/null || {
    apt-get install -y --no-install-recommends wrk sqlite3
}
build_release
WORK=$(mktemp -d /tmp/grace-soak.XXXXXX)
GPID=""
cleanup() {
    touch "$WORK/stop" 2>/dev/null || true
    # wrk and http-load run in run_window's subshell: their pids are in $WORK/pids.
    [ ! -f "$WORK/pids" ] || kill $(cat "$WORK/pids") 2>/dev/null || true
    [ ! -f "$WORK/perf.pid" ] || kill -INT "$(cat "$WORK/perf.pid")" 2>/dev/null || true
    [ -z "$GPID" ] || kill "$GPID" 2>/dev/null || true
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

machine
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); ${GRACE_BENCH_BIN:+binaries from $GRACE_BENCH_BIN, scripts of }commit $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- Sources || echo ' (Sources modified)')"

TOKENS="$WORK/tokens"
VIEWER=$("$BIN/graced" token create --tokens "$TOKENS" --name soak-viewer --role viewer 2>/dev/null)
OPERATOR=$("$BIN/graced" token create --tokens "$TOKENS" --name soak-operator --role operator 2>/dev/null)
ADMIN=$("$BIN/graced" token create --tokens "$TOKENS" --name soak-admin --role admin 2>/dev/null)
WRONG="grace_$(printf '0%.0s' $(seq 64))"
PORT=$(free_port)
SOCK="$WORK/graced.sock"
DB="$WORK/graced.sqlite"
# A build from before a flag (GRACE_BENCH_BIN=DIR, to show what an older commit does) runs without it.
HELP=$("$BIN/graced" serve --help 2>&1)
FLAGS=()
for flag in "--audit-max-rows $AUDIT_ROWS" "--events-max-rows $EVENTS_ROWS" "--jobs-max-rows $JOBS_ROWS" \
    "--prune-interval $PRUNE" "--mutations-per-minute $MUTATIONS"; do
    if grep -q -- "${flag% *} " <<<"$HELP"; then FLAGS+=($flag); else echo "note: this graced has no ${flag% *}"; fi
done
"$BIN/graced" serve --simulate --tokens "$TOKENS" --listen "127.0.0.1:$PORT" --listen "unix:$SOCK" \
    --db "$DB" --log-level warning "${FLAGS[@]}" >"$WORK/graced.log" 2>&1 &
GPID=$!
echo "graced serve --simulate --tokens FILE --listen 127.0.0.1:PORT --listen unix:SOCK --db FILE --log-level warning ${FLAGS[*]}"
URL="http://127.0.0.1:$PORT"
deadline=$(( $(now_ms) + 60000 ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VIEWER" "$URL/gpus")" = 200 ]; do
    kill -0 "$GPID" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ] || { echo "graced did not start" >&2; cat "$WORK/graced.log" >&2; exit 1; }
    sleep 0.01
done
# The simulated host's GPUs, VFIO-bound ones first (the operators reset and bind those).
read -r VFIO ALL < <(curl -s -H "Authorization: Bearer $VIEWER" "$URL/gpus" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
vfio = [g["bdf"] for g in items if "vfio" in (g.get("driver") or "")]
print(",".join(vfio), ",".join(g["bdf"] for g in items))')
echo "GPUs: $ALL (VFIO: $VFIO)"

# The Unix socket's share: the same kinds as wrk's, and root without a token (admin by its peer
# credentials); 10 requests: 8 answered 200, one 401, one 403.
IFS=, read -r -a GPUS <<<"$ALL"
cat >"$WORK/unix.mix" <<MIX
GET /gpus | Authorization: Bearer $VIEWER
GET /gpus/${GPUS[0]}
GET /gpus | Authorization: Bearer $VIEWER
GET /healthz
GET /gpus/${GPUS[1]} | Authorization: Bearer $OPERATOR
GET /gpus | Authorization: Bearer $WRONG
GET /metrics | Authorization: Bearer $VIEWER
GET /gpus
POST /gpus/${GPUS[2]}/reset | Authorization: Bearer $VIEWER
GET /gpus/${GPUS[3]} | Connection: close
MIX

TICKS=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$GPID/status"; }
threads() { awk '/^Threads/{print $2}' "/proc/$GPID/status"; }
fds() { ls "/proc/$GPID/fd" | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GPID/stat"; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
rows() {
    sqlite3 -readonly "$DB" 'SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM events), (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_phases);' 2>/dev/null | tr '|' ' ' || echo "? ? ? ?"
}
side_requests() {
    python3 - "$WORK/events.json" "$WORK/mutations.json" <<'PY'
import json, sys
total = 0
for path in sys.argv[1:]:
    try:
        total += json.load(open(path))["requests"]
    except (OSError, ValueError):
        pass
print(total)
PY
}
alive() { kill -0 "$GPID" 2>/dev/null; }
# Instructions graced executes (user and kernel, `perf stat`), when perf can count them here: unlike
# CPU time, they hardly move with what else the machine runs.
PERF=""
if command -v perf >/dev/null && perf stat -x, -e instructions -- true 2>&1 | grep -q '^[0-9]*,,instructions'; then PERF=1; fi

# One window: wrk (TCP) and http-load (Unix socket) at once, each with its share of BUDGET; prints
# "TCP_REQUESTS TCP_P99 TCP_ERRORS TCP_STATUSES UNIX_REQUESTS UNIX_P99 UNIX_ERRORS UNIX_STATUSES".
# Against the soaked graced, or the one at URL, SOCK, PID.
run_window() {
    local budget=$1 URL=${2:-$URL} SOCK=${3:-$SOCK} GPID=${4:-$GPID} tcp unix
    tcp=$((budget * 3 / 4)); unix=$((budget - tcp))
    rm -f "$WORK"/done.*
    wrk -t2 -c12 -d3600s --latency -s "$BENCH_DIR/soak.lua" "$URL" -- $((tcp / 2)) "$WORK/done" \
        "$VIEWER" "$OPERATOR" "$ADMIN" "$ALL" >"$WORK/wrk.out" 2>&1 &
    local wpid=$!
    "$BIN/grace-bench" http-load "unix:$SOCK" --connections 8 --threads 1 --requests "$unix" \
        --mix "$WORK/unix.mix" >"$WORK/unix.out" 2>&1 &
    local upid=$!
    echo "$wpid $upid" >"$WORK/pids"
    # wrk's threads stop at their budget but wrk waits for its -d: end it when both are done (or
    # when graced died; 30 min at most for a window).
    local deadline=$(( $(now_ms) + 1800000 ))
    while [ "$(ls "$WORK"/done.* 2>/dev/null | wc -l)" -lt 2 ] && kill -0 "$wpid" 2>/dev/null; do
        alive && [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.01
    done
    kill -INT "$wpid" 2>/dev/null || true
    alive || kill "$upid" 2>/dev/null || true
    # (kill -0 rather than wait alone: bash may have reaped them already)
    while kill -0 "$wpid" 2>/dev/null || kill -0 "$upid" 2>/dev/null; do sleep 0.01; done
    wait "$wpid" "$upid" 2>/dev/null || true
    awk '/requests in/{n=$1} / 99%/{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
         /Socket errors/{gsub(",",""); err+=$4+$6+$8+$10} /^statuses=/{st=substr($0, 10)}
         END{printf "%d %.2f %d %s ", n, p99, err, (st == "" ? "none" : st)}' "$WORK/wrk.out"
    awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
         END{printf "%d %.2f %d %s\n", v["requests"], v["p99_ms"], v["errors"], (v["statuses"] == "" ? "none" : v["statuses"])}' "$WORK/unix.out"
}

# Statuses other than the mix's 200, 401 and 403; and whether 401 and 403 kept their shares
# (wrk: 2/20 and 1/20; the socket: 1/10 each), within 2 points.
unexpected() {
    python3 - "$@" <<'PY'
import sys
bad = 0
for text, share401, share403 in ((sys.argv[1], 0.10, 0.05), (sys.argv[2], 0.10, 0.10)):
    counts = {int(k): int(v) for k, v in (p.split(":") for p in text.split(",") if ":" in p)}
    total = sum(counts.values()) or 1
    bad += sum(v for k, v in counts.items() if k not in (200, 401, 403))
    if abs(counts.get(401, 0) / total - share401) > 0.02 or abs(counts.get(403, 0) / total - share403) > 0.02:
        bad += 1
print(bad)
PY
}

BASE_FDS=$(fds); BASE_THREADS=$(threads); BASE_RSS=$(rss_kb)
echo "graced idle after start: RSS $((BASE_RSS / 1024)) MB, $BASE_FDS fds, $BASE_THREADS threads"
python3 "$BENCH_DIR/soak-clients.py" events --tcp "127.0.0.1:$PORT" --unix "$SOCK" --viewer "$VIEWER" \
    --source 127.0.0.2 --stats "$WORK/events.json" --stop "$WORK/stop" --pause "$WORK/pause" 2>"$WORK/events.err" &
python3 "$BENCH_DIR/soak-clients.py" mutations --tcp "127.0.0.1:$PORT" --unix "$SOCK" --operator "$OPERATOR" \
    --gpus "$VFIO" --source 127.0.0.3 --stats "$WORK/mutations.json" --stop "$WORK/stop" --pause "$WORK/pause" 2>"$WORK/mutations.err" &

echo "warm-up: $WARMUP requests"
read -r _ _ W_ERR W_ST _ _ U_ERR U_ST < <(run_window "$WARMUP")
alive || { echo "graced died during the warm-up" >&2; tail -20 "$WORK/graced.log" >&2; exit 1; }
# The warm-up also lasts until the operators have had 20 jobs accepted and the event clients 20
# streams (60 s at most): the first job makes graced open a few descriptors (the Swift runtime's
# dispatch event loop: epoll, eventfd, timerfd), and the quiet sample below is the reference for
# the one after the load.
for _ in $(seq 60); do
    python3 - "$WORK/events.json" "$WORK/mutations.json" <<'PY' && break
import json, sys
try:
    events, mutations = (json.load(open(p)) for p in sys.argv[1:])
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if events["statuses"].get("200", 0) >= 20 and mutations["statuses"].get("202", 0) >= 20 else 1)
PY
    sleep 1
done

# graced quiet: no client connected, abandoned event streams noticed (at graced's next write to
# them, the 15 s heartbeat at the latest), one more prune. Run after the warm-up and after the load:
# the two are compared.
settle() {
    local before after=-1 tries=0
    while before=$after; sleep 2; after=$(side_requests); [ "$before" != "$after" ] && [ $((tries += 1)) -lt 30 ]; do :; done
    sleep $(( PRUNE + 16 ))
}
touch "$WORK/pause"; settle
QUIET_FDS=$(fds); QUIET_THREADS=$(threads); QUIET_RSS=$(rss_kb)
echo "graced quiet after the warm-up: RSS $((QUIET_RSS / 1024)) MB, $QUIET_FDS fds, $QUIET_THREADS threads"
rm -f "$WORK/pause"

# us/req: graced's CPU time per request; kins/req: thousands of instructions per request (perf).
printf '%-4s %8s %6s %7s %8s %8s %7s %7s %6s %4s %4s %6s %6s %6s %6s %5s %6s %6s\n' \
    win requests s req/s tcp_p99 unix_p99 us/req kins/req RSS_MB fds thr db_MB wal_MB audit events jobs phases errors
WINDOWS=$(( (REQUESTS + WINDOW - 1) / WINDOW ))
SIDE_BEFORE=$(side_requests)
TOTAL=0; FAILED=""; ERRORS_TOTAL=0
PEAK_AUDIT=0; PEAK_EVENTS=0; PEAK_JOBS=0
: >"$WORK/windows"
for win in $(seq "$WINDOWS"); do
    budget=$(( REQUESTS - TOTAL < WINDOW ? REQUESTS - TOTAL : WINDOW ))
    T0=$(date +%s%N); C0=$(cpu_ticks)
    [ -z "$PERF" ] || { perf stat -x, -e instructions -p "$GPID" -o "$WORK/perf.out" & echo $! >"$WORK/perf.pid"; }
    read -r T_N T_P99 T_ERR T_ST U_N U_P99 U_ERR U_ST < <(run_window "$budget")
    T1=$(date +%s%N)
    INSTR=0
    if [ -n "$PERF" ]; then
        kill -INT "$(cat "$WORK/perf.pid")" 2>/dev/null || true
        wait "$(cat "$WORK/perf.pid")" 2>/dev/null || true
        INSTR=$(awk -F, '$3 ~ /instructions/ {print $1; exit}' "$WORK/perf.out" 2>/dev/null)
        [[ "$INSTR" =~ ^[0-9]+$ ]] || INSTR=0
    fi
    if ! alive; then FAILED="graced died in window $win"; break; fi
    C1=$(cpu_ticks)
    SIDE=$(side_requests); SIDE_N=$((SIDE - SIDE_BEFORE)); SIDE_BEFORE=$SIDE
    N=$((T_N + U_N + SIDE_N)); TOTAL=$((TOTAL + T_N + U_N))
    BAD=$(( T_ERR + U_ERR + $(unexpected "$T_ST" "$U_ST") ))
    ERRORS_TOTAL=$((ERRORS_TOTAL + BAD))
    read -r AUDIT EVENTS JOBS PHASES < <(rows)
    PEAK_AUDIT=$(( AUDIT > PEAK_AUDIT ? AUDIT : PEAK_AUDIT ))
    PEAK_EVENTS=$(( EVENTS > PEAK_EVENTS ? EVENTS : PEAK_EVENTS ))
    PEAK_JOBS=$(( JOBS > PEAK_JOBS ? JOBS : PEAK_JOBS ))
    LINE=$(awk -v w="$win" -v n="$N" -v ns=$((T1 - T0)) -v tp="$T_P99" -v up="$U_P99" -v ticks=$((C1 - C0)) -v hz="$TICKS" \
        -v rss="$(rss_kb)" -v fds="$(fds)" -v thr="$(threads)" -v db="$(size_of "$DB")" -v wal="$(size_of "$DB-wal")" \
        -v a="$AUDIT" -v e="$EVENTS" -v j="$JOBS" -v p="$PHASES" -v bad="$BAD" -v ins="$INSTR" 'BEGIN{
        s = ns / 1e9
        printf "%-4s %8d %6.1f %7.0f %8.2f %8.2f %7.1f %7s %6.1f %4d %4d %6.2f %6.2f %6s %6s %5s %6s %6d\n",
            w, n, s, n / s, tp, up, ticks / hz / n * 1e6, (ins > 0 ? sprintf("%.0f", ins / n / 1000) : "-"),
            rss / 1024, fds, thr, db / 1048576, wal / 1048576, a, e, j, p, bad }')
    echo "$LINE"; echo "$LINE" >>"$WORK/windows"
done
echo "statuses of the last window: wrk $T_ST; socket $U_ST"
echo "side clients: events $(cat "$WORK/events.json" 2>/dev/null); mutations $(cat "$WORK/mutations.json" 2>/dev/null)"

if [ -n "$FAILED" ]; then
    echo "FAIL  $FAILED; the end of its log:"
    tail -20 "$WORK/graced.log"
    exit 1
fi

# Quiet again.
touch "$WORK/stop"; settle
if alive; then
    END_FDS=$(fds); END_THREADS=$(threads); END_RSS=$(rss_kb)
    read -r AUDIT EVENTS JOBS PHASES < <(rows)
    echo "graced quiet after the load: RSS $((END_RSS / 1024)) MB, $END_FDS fds, $END_THREADS threads; rows: audit $AUDIT, events $EVENTS, jobs $JOBS (phases $PHASES)"
else
    FAILED="${FAILED:-graced died after the load}"
fi
if grep -v -i ' notice \| info ' "$WORK/graced.log" | grep -q .; then
    echo "graced's log (warnings and worse, first 10 of $(grep -c -v -i ' notice \| info ' "$WORK/graced.log")):"
    grep -v -i ' notice \| info ' "$WORK/graced.log" | head -10
fi
SIDE_ERRORS=$(python3 -c '
import json, sys
n = 0
for p in sys.argv[1:]:
    try:
        s = json.load(open(p)); n += s["errors"]
        if s["lastError"]: print(p.rsplit("/", 1)[-1], "last error:", s["lastError"], file=sys.stderr)
    except (OSError, ValueError): pass
print(n)' "$WORK/events.json" "$WORK/mutations.json")

# Paired: the soaked graced against a fresh one started now on a copy of its database, the two
# driven in turn by the same mix (3 rounds): a slowdown or growth that the soak built up shows
# here whatever the machine's load did meanwhile, since both sides see the same moments.
PAIRED=""
if alive; then
    sqlite3 "$DB" ".backup '$WORK/fresh.sqlite'"
    FPORT=$(free_port); FSOCK="$WORK/fresh.sock"
    "$BIN/graced" serve --simulate --tokens "$TOKENS" --listen "127.0.0.1:$FPORT" --listen "unix:$FSOCK" \
        --db "$WORK/fresh.sqlite" --log-level warning "${FLAGS[@]}" >"$WORK/fresh.log" 2>&1 &
    FPID=$!
    FURL="http://127.0.0.1:$FPORT"
    deadline=$(( $(now_ms) + 60000 ))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VIEWER" "$FURL/gpus")" = 200 ]; do
        kill -0 "$FPID" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.01
    done
    PAIR=${SOAK_PAIR:-40000}
    run_window "$PAIR" "$FURL" "$FSOCK" "$FPID" >/dev/null   # its warm-up
    : >"$WORK/paired"
    for round in 1 2 3; do
        for side in soaked fresh; do
            if [ $side = soaked ]; then args=("$URL" "$SOCK" "$GPID"); else args=("$FURL" "$FSOCK" "$FPID"); fi
            T0=$(date +%s%N)
            read -r T_N _ T_ERR _ U_N _ U_ERR _ < <(run_window "$PAIR" "${args[@]}")
            T1=$(date +%s%N)
            echo "$round $side $(awk -v n=$((T_N + U_N)) -v ns=$((T1 - T0)) 'BEGIN{printf "%.0f", n / (ns / 1e9)}') $((T_ERR + U_ERR))" >>"$WORK/paired"
        done
    done
    F_RSS=$(awk '/^VmRSS/{print $2}' "/proc/$FPID/status"); F_FDS=$(ls "/proc/$FPID/fd" | wc -l)
    kill "$FPID"; wait "$FPID" 2>/dev/null || true
    PAIRED=$(awk '{r[$1, $2] = $3} END{for (i = 1; i <= 3; i++) printf "%s%d/%d", (i > 1 ? " " : ""), r[i, "soaked"], r[i, "fresh"]}' "$WORK/paired")
    RATIO=$(python3 -c '
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = lambda side: statistics.median(float(r[2]) for r in rows if r[1] == side)
print("%.2f" % (median("soaked") / median("fresh")))' "$WORK/paired")
    echo "paired rounds, req/s soaked/fresh: $PAIRED; RSS soaked $(( $(rss_kb) / 1024 )) MB, fresh $((F_RSS / 1024)) MB; fds soaked $(fds), fresh $F_FDS"
fi

# Verdicts.
verdict() { # NAME OK DETAIL
    if [ "$2" = 1 ]; then echo "PASS  $1: $3"; else echo "FAIL  $1: $3"; FAILED="${FAILED:+$FAILED; }$1"; fi
}
echo "== goals"
if [ -n "$FAILED" ]; then
    echo "FAIL  $FAILED"; tail -20 "$WORK/graced.log"; exit 1
fi
FIRST=$(head -1 "$WORK/windows"); LAST=$(tail -1 "$WORK/windows")
field() { echo "$1" | awk -v f="$2" '{print $f}'; }
R1=$(field "$FIRST" 4); RN=$(field "$LAST" 4)
verdict "throughput" "$(awk -v a="$R1" -v b="$RN" 'BEGIN{print (b >= 0.9 * a) ? 1 : 0}')" \
    "last window $RN req/s vs first $R1 ($(awk -v a="$R1" -v b="$RN" 'BEGIN{printf "%.2f", b / a}')x, goal >= 0.9x); per request, CPU $(field "$FIRST" 7) -> $(field "$LAST" 7) us, instructions $(field "$FIRST" 8)k -> $(field "$LAST" 8)k; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$PAIRED" ] || verdict "paired throughput" "$(awk -v r="$RATIO" 'BEGIN{print (r >= 0.9) ? 1 : 0}')" \
    "median soaked/fresh ${RATIO}x over 3 alternating rounds of ${PAIR} requests ($PAIRED req/s; goal >= 0.9x)"
I1=$(field "$FIRST" 8); IN=$(field "$LAST" 8)
if [ "$I1" != - ] && [ "$IN" != - ]; then
    # The same goal in instructions, which the machine's load hardly moves.
    verdict "instructions" "$(awk -v a="$I1" -v b="$IN" 'BEGIN{print (b <= 1.1 * a) ? 1 : 0}')" \
        "last window ${IN}k per request vs first ${I1}k ($(awk -v a="$I1" -v b="$IN" 'BEGIN{printf "%.2f", b / a}')x, goal <= 1.1x)"
fi
M1=$(field "$FIRST" 7); MN=$(field "$LAST" 7); MMAX=$(awk '{print $7}' "$WORK/windows" | sort -n | tail -1)
S1=$(field "$FIRST" 9); SN=$(field "$LAST" 9); SMAX=$(awk '{print $9}' "$WORK/windows" | sort -n | tail -1)
verdict "RSS" "$(awk -v a="$S1" -v b="$SN" 'BEGIN{print (b - a <= 5) ? 1 : 0}')" \
    "last window $SN MB vs first $S1 MB (+$(awk -v a="$S1" -v b="$SN" 'BEGIN{printf "%.1f", b - a}') MB, goal <= +5), largest $SMAX MB; quiet after the load $((END_RSS / 1024)) MB"
# The same from the first window in which every table had reached its bound: the database (and
# SQLite's caches of it) stop growing there, so what RSS does after it is the process's own.
STEADY=$(awk -v a="$AUDIT_ROWS" -v e="$EVENTS_ROWS" -v j="$JOBS_ROWS" \
    '$14 >= 0.9 * a && $15 >= 0.9 * e && $16 >= 0.9 * j {print; exit}' "$WORK/windows")
if [ -n "$STEADY" ]; then
    SS=$(field "$STEADY" 9)
    echo "INFO  RSS from window $(field "$STEADY" 1), the first with every table at its bound: $SS MB -> $SN MB (+$(awk -v a="$SS" -v b="$SN" 'BEGIN{printf "%.1f", b - a}') MB), largest after it $(awk -v w="$(field "$STEADY" 1)" '$1 >= w {print $9}' "$WORK/windows" | sort -n | tail -1) MB"
fi
F1=$(field "$FIRST" 10); FN=$(field "$LAST" 10); FMAX=$(awk '{print $10}' "$WORK/windows" | sort -n | tail -1)
verdict "fds" "$([ "$END_FDS" -le $((QUIET_FDS + 1)) ] && [ "$FN" -le $((F1 + 8)) ] && echo 1 || echo 0)" \
    "quiet $QUIET_FDS after the warm-up, $END_FDS after the load (goal: +1 at most); windows $F1 first, $FN last (goal: +8 at most: connections open at the sample), $FMAX largest"
H1=$(field "$FIRST" 11); HN=$(field "$LAST" 11); HMAX=$(awk '{print $11}' "$WORK/windows" | sort -n | tail -1)
# Threads: 13 at start (4 MHD-worker, 9 of graced's own), then the Swift runtime's dispatch threads
# (2-3), started by the first async handler (?wait=, /events) and reclaimed when idle for a while:
# the quiet count moves between 13 and 17 with that pool, so the goal is on the windows' count.
verdict "threads" "$([ "$END_THREADS" -le $((H1 + 2)) ] && [ "$HMAX" -le $((H1 + 2)) ] && echo 1 || echo 0)" \
    "windows $H1 first, $HN last, $HMAX largest; quiet $QUIET_THREADS after the warm-up, $END_THREADS after the load (goal: first window + 2 at most, for the dispatch pool)"
for t in "audit:$AUDIT:$PEAK_AUDIT:$AUDIT_ROWS" "events:$EVENTS:$PEAK_EVENTS:$EVENTS_ROWS" "jobs:$JOBS:$PEAK_JOBS:$JOBS_ROWS"; do
    IFS=: read -r name now peak bound <<<"$t"
    verdict "$name rows" "$([ "$now" -le "$bound" ] && [ "$peak" -ge $((bound * 9 / 10)) ] && echo 1 || echo 0)" \
        "$now after the load, $peak at most in a window, bound $bound (goal: at most the bound once pruned, and the bound reached: else the run shows nothing)"
done
LOG_ERRORS=$(grep -c -i ' error \| critical ' "$WORK/graced.log" || true)
verdict "log" "$([ "$LOG_ERRORS" = 0 ] && echo 1 || echo 0)" "$LOG_ERRORS lines at error or critical in graced's log (goal: none)"
verdict "answers" "$([ "$ERRORS_TOTAL" = 0 ] && [ "$SIDE_ERRORS" = 0 ] && echo 1 || echo 0)" \
    "$ERRORS_TOTAL socket errors or unexpected statuses in the load, $SIDE_ERRORS errors in the side clients (goal: none)"
echo "$TOTAL requests from wrk and http-load in $WINDOWS windows, plus the side clients'; CPU per request ranged $(awk '{print $7}' "$WORK/windows" | sort -n | head -1)-$MMAX us"
[ -z "$FAILED" ] || { echo "failed: $FAILED"; exit 1; }
