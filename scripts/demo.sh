#!/usr/bin/env bash
# Installs what GraceAPI needs, builds graced and gracectl, and runs graced on 127.0.0.1:8080 with
# bearer tokens. On a host without a GPU (or when GRACE_SIMULATE=1) it runs on the simulated host;
# extra arguments go to graced.
#
# The first run creates .demo/tokens (a salted hash of each token) and .demo/admin.token (the token
# itself, readable by you alone); the curl and gracectl examples in the README read it from there.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
swift build -c release --product graced
swift build -c release --product gracectl

mkdir -p -m 0700 .demo
if [ ! -s .demo/admin.token ]; then
    rm -f .demo/tokens
    (umask 077 && .build/release/graced token create --tokens .demo/tokens --name demo-admin --role admin >.demo/admin.token)
    (umask 077 && .build/release/graced token create --tokens .demo/tokens --name demo-viewer --role viewer >.demo/viewer.token)
fi

listen="${GRACE_LISTEN:-127.0.0.1:8080}"
args=(--listen "$listen" --tokens .demo/tokens)
if [ "${GRACE_SIMULATE:-}" = "1" ] || ! lspci -n 2>/dev/null | grep -qE ' 03[0-9a-f]{2}: '; then
    echo "No display-class PCI device here: running on the simulated host."
    args+=(--simulate)
fi
cat <<MSG
graced will listen on $listen; from another terminal:
    export GRACE_TOKEN=\$(cat $PWD/.demo/admin.token) GRACE_SERVER=$listen
    curl -s -H "Authorization: Bearer \$GRACE_TOKEN" $listen/gpus
    .build/release/gracectl gpus
MSG
exec .build/release/graced "${args[@]}" "$@"
