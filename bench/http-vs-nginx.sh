#!/usr/bin/env bash
# GET /gpus from graced against nginx serving the same bytes (6 and 72 GPUs), alternating the
# servers over several rounds; prints requests/s, p99, graced's and nginx's CPU per request, errors
# and the ratio per round, then the median (min-max) of each series over the rounds.
#
#   bench/http-vs-nginx.sh [ROUNDS=3] [DURATION=8s]
#
# Series, each round in this order:
#   TCP, wrk:               graced --no-auth | nginx | graced with a viewer token (no --no-auth)
#   Unix socket, http-load: graced with the viewer token | nginx (listen unix:) | graced, root's
#                           peer credentials (admin, no token)
#   TCP, http-load:         graced with the viewer token | nginx (the same client as the socket rows)
# wrk cannot speak over a Unix socket; `grace-bench http-load` (bench/Sources/grace-bench/HTTPLoad.swift)
# is a wrk-like client that can, and its TCP rows show how it compares with wrk.
#
# Server and client are pinned to separate cores when there are at least 4 (server on the first
# half, the client on the second); on fewer cores they share, and the figures say more about the machine.
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}
DURATION=${2:-8s}
SECONDS_RUN=${DURATION%s}
command -v nginx >/dev/null && command -v wrk >/dev/null || {
    apt-get install -y --no-install-recommends nginx-light wrk
}
build_release
WORK=$(mktemp -d /tmp/grace-http-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

CORES=$(nproc)
if [ "$CORES" -ge 4 ]; then
    HALF=$((CORES / 2))
    SERVER_CPUS="0-$((HALF - 1))"; CLIENT_CPUS="$HALF-$((CORES - 1))"; THREADS=$HALF
    pinned="server on cores $SERVER_CPUS, client on $CLIENT_CPUS"
else
    SERVER_CPUS="0-$((CORES - 1))"; CLIENT_CPUS=$SERVER_CPUS; THREADS=2
    pinned="server and client share all $CORES cores"
fi
machine
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); commit $(cd "$REPO" && git rev-parse --short HEAD)"
echo "$pinned; wrk -t$THREADS -c64 -d$DURATION and grace-bench http-load --threads $THREADS --connections 64 --duration $SECONDS_RUN, $ROUNDS alternating rounds"

# Three tokens in the file, as a small deployment has (viewer, operator, admin): graced hashes the
# presented token once per record, so a token's cost grows with the file.
TOKENS="$WORK/tokens"
VIEWER=$("$BIN/graced" token create --tokens "$TOKENS" --name bench-viewer --role viewer 2>/dev/null)
"$BIN/graced" token create --tokens "$TOKENS" --name bench-operator --role operator >/dev/null 2>&1
"$BIN/graced" token create --tokens "$TOKENS" --name bench-admin --role admin >/dev/null 2>&1

TICKS=$(getconf CLK_TCK)
# CPU ticks of a process and its children's threads (nginx: the master and its workers).
cpu_ticks() {
    local total=0 pid
    for pid in "$@" $(for p in "$@"; do pgrep -P "$p"; done); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# "RPS P99_MS ERRORS CPU_US_PER_REQUEST" of one run: wrk (TCP URL) or http-load (TARGET PATH),
# with the server's CPU ticks over the run. Errors are socket errors plus non-2xx answers: a server
# that drops connections makes the client reconnect, which measures accept() rather than GET /gpus.
measure() {
    local client=$1 server_pids=$2 target=$3 header=${4:-} before after out
    before=$(cpu_ticks $server_pids)
    if [ "$client" = wrk ]; then
        out=$(taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c64 -d"$DURATION" --latency ${header:+-H "$header"} "$target" |
            awk '/requests in/{n=$1} /Requests\/sec/{rps=$2} / 99%/{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
                 /Socket errors/{gsub(",",""); err+=$4+$6+$8+$10} /Non-2xx/{err+=$NF}
                 END{printf "%d %.0f %.3f %d\n", n, rps, p99, err}')
    else
        out=$(taskset -c "$CLIENT_CPUS" "$BIN/grace-bench" http-load "$target" --threads "$THREADS" --connections 64 \
            --duration "$SECONDS_RUN" ${header:+--header "$header"} /gpus |
            awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
                  n = split(v["statuses"], st, ","); bad = 0
                  for (i = 1; i <= n; i++) {split(st[i], sc, ":"); if (sc[1] != "200") bad += sc[2]}
                  printf "%d %d %.3f %d\n", v["requests"], v["rps"], v["p99_ms"], v["errors"] + bad}')
    fi
    after=$(cpu_ticks $server_pids)
    read -r n rps p99 err <<<"$out"
    echo "$rps $p99 $err $(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$n" 'BEGIN{printf "%.1f", (n > 0 ? t / hz / n * 1e6 : 0)}')"
}

RESULTS="$WORK/results"
: >"$RESULTS"
# Runs one series, prints it and records "GPUS SERIES RPS P99 ERRORS CPU_US" for the summary.
series() {
    local name=$1 client=$2 pids=$3 target=$4 header=${5:-} rps p99 err cpu
    read -r rps p99 err cpu < <(measure "$client" "$pids" "$target" "$header")
    echo "$GPUS $name $rps $p99 $err $cpu" >>"$RESULTS"
    printf '  %-26s %7s req/s  p99 %7s ms  errors %s  server CPU %6s us/req\n' "$name" "$rps" "$p99" "$err" "$cpu"
    LAST_RPS=$rps
}
ratio() { awk -v g="$1" -v n="$2" 'BEGIN{printf "%.2f", (n > 0 ? g / n : 0)}'; }

for GPUS in 6 72; do
    TREE="$WORK/tree-$GPUS"
    "$BIN/grace-bench" make-tree "$GPUS" "$TREE"
    GPORT=$(free_port)
    # wrk's 64 connections all come from 127.0.0.1: past graced's default of 32 per client, the
    # rest would be refused and reconnect for the whole run (nginx has no such limit here).
    taskset -c "$SERVER_CPUS" "$BIN/graced" serve --sysfs "$TREE" --listen "127.0.0.1:$GPORT" --no-auth \
        --db "$WORK/graced-$GPUS.sqlite" --rescan-interval 0 --mutations-per-minute 0 --log-level error \
        --max-connections-per-client 0 &
    GPID=$!
    # The same, authenticated: tokens on TCP, and the Unix socket.
    TPORT=$(free_port)
    GSOCK="$WORK/graced-$GPUS.sock"
    taskset -c "$SERVER_CPUS" "$BIN/graced" serve --sysfs "$TREE" --listen "127.0.0.1:$TPORT" --listen "unix:$GSOCK" \
        --tokens "$TOKENS" --db "$WORK/graced-auth-$GPUS.sqlite" --rescan-interval 0 --mutations-per-minute 0 \
        --log-level error --max-connections-per-client 0 &
    TPID=$!
    wait_for_200 "http://127.0.0.1:$GPORT/gpus"
    deadline=$(( $(now_ms) + 60000 ))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VIEWER" "http://127.0.0.1:$TPORT/gpus")" = 200 ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "no answer from the authenticated graced" >&2; exit 1; }
        sleep 0.01
    done
    mkdir -p "$WORK/www-$GPUS"
    curl -s "http://127.0.0.1:$GPORT/gpus" -o "$WORK/www-$GPUS/gpus"
    # The authenticated graced's body differs only in its health looks' timestamps: same size.
    [ "$(stat -c %s "$WORK/www-$GPUS/gpus")" = "$(curl -s -H "Authorization: Bearer $VIEWER" "http://127.0.0.1:$TPORT/gpus" | wc -c)" ] ||
        echo "note: the two graced answered bodies of different sizes" >&2
    # nginx's workers run as www-data: the body and the folders above it must be readable to them.
    chmod 755 "$WORK" "$WORK/www-$GPUS"
    chmod 644 "$WORK/www-$GPUS/gpus"
    NPORT=$(free_port)
    NSOCK="$WORK/nginx-$GPUS.sock"
    cat >"$WORK/nginx-$GPUS.conf" <<CONF
worker_processes ${THREADS};
pid $WORK/nginx-$GPUS.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
    types { application/json json; }
    default_type application/json;
    server { listen 127.0.0.1:$NPORT; listen unix:$NSOCK; root $WORK/www-$GPUS; etag on; location / { add_header Cache-Control no-cache; } }
}
CONF
    taskset -c "$SERVER_CPUS" nginx -c "$WORK/nginx-$GPUS.conf" -g 'daemon off;' &
    NPID=$!
    wait_for_200 "http://127.0.0.1:$NPORT/gpus"
    BYTES=$(stat -c %s "$WORK/www-$GPUS/gpus")
    echo "== $GPUS GPUs, body $BYTES bytes (the same file for both)"
    for round in $(seq "$ROUNDS"); do
        echo "round $round:"
        series "tcp wrk graced no-auth" wrk "$GPID" "http://127.0.0.1:$GPORT/gpus"; G=$LAST_RPS
        series "tcp wrk nginx" wrk "$NPID" "http://127.0.0.1:$NPORT/gpus"; N=$LAST_RPS
        series "tcp wrk graced token" wrk "$TPID" "http://127.0.0.1:$TPORT/gpus" "Authorization: Bearer $VIEWER"; T=$LAST_RPS
        echo "  ratio to nginx: no-auth $(ratio "$G" "$N")x, token $(ratio "$T" "$N")x"
        series "unix http-load graced token" http-load "$TPID" "unix:$GSOCK" "Authorization: Bearer $VIEWER"; UT=$LAST_RPS
        series "unix http-load nginx" http-load "$NPID" "unix:$NSOCK"; UN=$LAST_RPS
        series "unix http-load graced peer" http-load "$TPID" "unix:$GSOCK"; UP=$LAST_RPS
        echo "  ratio to nginx over the socket: token $(ratio "$UT" "$UN")x, peer credentials $(ratio "$UP" "$UN")x"
        series "tcp http-load graced token" http-load "$TPID" "127.0.0.1:$TPORT" "Authorization: Bearer $VIEWER"; HT=$LAST_RPS
        series "tcp http-load nginx" http-load "$NPID" "127.0.0.1:$NPORT"; HN=$LAST_RPS
        echo "  ratio to nginx, TCP through http-load: token $(ratio "$HT" "$HN")x"
        echo "$GPUS ratio:tcp-no-auth $(ratio "$G" "$N") 0 0 0" >>"$RESULTS"
        echo "$GPUS ratio:tcp-token $(ratio "$T" "$N") 0 0 0" >>"$RESULTS"
        echo "$GPUS ratio:unix-token $(ratio "$UT" "$UN") 0 0 0" >>"$RESULTS"
        echo "$GPUS ratio:unix-peer $(ratio "$UP" "$UN") 0 0 0" >>"$RESULTS"
        echo "$GPUS ratio:tcp-http-load-token $(ratio "$HT" "$HN") 0 0 0" >>"$RESULTS"
    done
    kill "$GPID" "$TPID" "$NPID"; wait "$GPID" "$TPID" "$NPID" 2>/dev/null || true
done

echo "== median (min-max) over $ROUNDS rounds"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    gpus, *rest = line.split()
    # series names have spaces: the last four fields are the figures
    name, figures = " ".join(rest[:-4]), [float(x) for x in rest[-4:]]
    rows.setdefault((int(gpus), name), []).append(figures)
def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
for (gpus, name), runs in rows.items():
    if name.startswith("ratio:"):
        print(f"{gpus:>3} GPUs  {name[6:] + ' ratio to nginx':<34} {spread([r[0] for r in runs], '{:.2f}')}x")
    else:
        print(f"{gpus:>3} GPUs  {name:<34} {spread([r[0] / 1000 for r in runs], '{:.1f}')}k req/s  "
              f"p99 {spread([r[1] for r in runs], '{:.2f}')} ms  CPU {spread([r[3] for r in runs], '{:.1f}')} us/req  "
              f"errors {int(sum(r[2] for r in runs))}")
PY
