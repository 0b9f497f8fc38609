#!/usr/bin/env bash
# Installs what GraceAPI needs, builds graced and runs it. On a host without a GPU (or when
# GRACE_SIMULATE=1) it runs on the simulated host; extra arguments go to graced.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
swift build -c release --product graced
swift build -c release --product gracectl

args=(--listen "${GRACE_LISTEN:-127.0.0.1:8080}")
if [ "${GRACE_SIMULATE:-}" = "1" ] || ! lspci -n 2>/dev/null | grep -qE ' 03[0-9a-f]{2}: '; then
    echo "No display-class PCI device here: running on the simulated host."
    args+=(--simulate)
fi
exec .build/release/graced "${args[@]}" "$@"
