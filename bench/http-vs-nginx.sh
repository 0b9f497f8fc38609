#!/usr/bin/env bash
# GET /gpus from graced against nginx serving the same bytes (6 and 72 GPUs), wrk alternating the
# two servers over several rounds; prints requests/s, p99 and the ratio per round.
#
#   bench/http-vs-nginx.sh [ROUNDS=3] [DURATION=8s]
#
# Server and client are pinned to separate cores when there are at least 4 (server on the first
# half, wrk on the second); on fewer cores they share, and the figures say more about the machine.
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}
DURATION=${2:-8s}
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
    pinned="server on cores $SERVER_CPUS, wrk on $CLIENT_CPUS"
else
    SERVER_CPUS="0-$((CORES - 1))"; CLIENT_CPUS=$SERVER_CPUS; THREADS=2
    pinned="server and wrk share all $CORES cores"
fi
machine
echo "$pinned; wrk -t$THREADS -c64 -d$DURATION, $ROUNDS alternating rounds"

# wrk's requests/s, p99 (ms) and socket errors plus non-2xx answers as "RPS P99 ERRORS": a server
# that drops connections makes wrk reconnect, which measures accept() rather than GET /gpus.
run_wrk() {
    taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c64 -d"$DURATION" --latency "$1" |
        awk '/Requests\/sec/{rps=$2} / 99%/{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
             /Socket errors/{gsub(",",""); err+=$4+$6+$8+$10} /Non-2xx/{err+=$NF}
             END{printf "%.0f %.3f %d\n", rps, p99, err}'
}

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
    wait_for_200 "http://127.0.0.1:$GPORT/gpus"
    mkdir -p "$WORK/www-$GPUS"
    curl -s "http://127.0.0.1:$GPORT/gpus" -o "$WORK/www-$GPUS/gpus"
    # nginx's workers run as www-data: the body and the folders above it must be readable to them.
    chmod 755 "$WORK" "$WORK/www-$GPUS"
    chmod 644 "$WORK/www-$GPUS/gpus"
    NPORT=$(free_port)
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
    server { listen 127.0.0.1:$NPORT; root $WORK/www-$GPUS; etag on; location / { add_header Cache-Control no-cache; } }
}
CONF
    taskset -c "$SERVER_CPUS" nginx -c "$WORK/nginx-$GPUS.conf" -g 'daemon off;' &
    NPID=$!
    wait_for_200 "http://127.0.0.1:$NPORT/gpus"
    BYTES=$(stat -c %s "$WORK/www-$GPUS/gpus")
    echo "== $GPUS GPUs, body $BYTES bytes (the same file for both)"
    for round in $(seq "$ROUNDS"); do
        read -r G_RPS G_P99 G_ERR < <(run_wrk "http://127.0.0.1:$GPORT/gpus")
        read -r N_RPS N_P99 N_ERR < <(run_wrk "http://127.0.0.1:$NPORT/gpus")
        RATIO=$(awk -v g="$G_RPS" -v n="$N_RPS" 'BEGIN{printf "%.2f", g/n}')
        echo "round $round: graced $G_RPS req/s p99 ${G_P99} ms errors $G_ERR | nginx $N_RPS req/s p99 ${N_P99} ms errors $N_ERR | ratio ${RATIO}x"
    done
    kill "$GPID" "$NPID"; wait "$GPID" "$NPID" 2>/dev/null || true
done
