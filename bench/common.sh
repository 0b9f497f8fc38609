# Shared by bench/*.sh: the release binaries, a free port, waiting for an answer, timing in ms.
# shellcheck shell=bash
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# GRACE_BENCH_BIN=DIR benches the graced and grace-bench already in DIR (say, a copy of an earlier
# build, to compare two builds in one sitting) instead of building this tree.
BIN="${GRACE_BENCH_BIN:-$REPO/.build/release}"

build_release() {
    [ -z "${GRACE_BENCH_BIN:-}" ] || return 0
    (cd "$REPO" && swift build -c release --product graced >/dev/null && swift build -c release --product grace-bench >/dev/null)
}

now_ms() { date +%s%3N; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until `curl` gets a 200 from URL (up to 60 s), polling every millisecond.
wait_for_200() {
    local url=$1 deadline=$(( $(now_ms) + 60000 ))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "no answer from $url" >&2; return 1; }
        sleep 0.001
    done
}

machine() {
    echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
}
