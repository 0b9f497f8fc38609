#!/usr/bin/env bash
# schemathesis against graced --simulate: every phase (examples, coverage, fuzzing, stateful through
# the `links` of openapi.yaml) and every check, bounded in time, with a seed that it prints so a
# failure can be replayed: SCHEMATHESIS_SEED=<seed> scripts/schemathesis.sh. Random by hand, fixed in CI.
#
# One pass per role. The admin's is the long one: admin can call every operation, so it reaches
# every handler. The operator's and the viewer's are short: what differs for them is the role check
# at the edge (403 with `requiredRole`), which the role-matrix test (AccessControlTests) checks
# route by route; here they show that those refusals match the contract too.
#
# Needs a built graced (swift build); makes .build-venv (scripts/python-venv.sh) on first use.
# Environment: SCHEMATHESIS_SEED, SCHEMATHESIS_ADMIN_SECONDS (default 150),
# SCHEMATHESIS_ROLE_SECONDS (default 25), SCHEMATHESIS_MAX_EXAMPLES (default 40).
set -euo pipefail
cd "$(dirname "$0")/.."

graced=.build/debug/graced
if [ ! -x "$graced" ]; then
    echo "no $graced: run swift build first" >&2
    exit 1
fi
venv=$(scripts/python-venv.sh)
# CI replays one seed that passed here, so that a landing does not depend on what a new seed happens
# to try; a run by hand draws a new seed each time and is where new findings come from.
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
    seed=$SCHEMATHESIS_SEED
elif [ "${CI:-}" = "true" ]; then
    seed=3190416688
else
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
fi
admin_seconds=${SCHEMATHESIS_ADMIN_SECONDS:-150}
role_seconds=${SCHEMATHESIS_ROLE_SECONDS:-25}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-40}

work=$(mktemp -d /tmp/graced-schemathesis-XXXXXX)
chmod 700 "$work"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Tokens for each role, in a file only this user can read (they are credentials).
umask 077
declare -A tokens
for role in admin operator viewer; do
    tokens[$role]=$("$graced" token create --tokens "$work/tokens" --name "schemathesis-$role" --role "$role" 2>/dev/null)
done
chmod 600 "$work/tokens"

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
# No rate limit and no rescans: the run decides every change, so it replays from its seed.
"$graced" --simulate --listen "127.0.0.1:$port" --tokens "$work/tokens" --mutations-per-minute 0 \
    --rescan-interval 0 --db "$work/graced.sqlite" --log-level warning >"$work/graced.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if curl -sf -o /dev/null -H "Authorization: Bearer ${tokens[admin]}" "$url/healthz"; then break; fi
    sleep 0.1
done

echo "schemathesis seed: $seed (replay: SCHEMATHESIS_SEED=$seed scripts/schemathesis.sh)"
status=0
run() {
    local role=$1 seconds=$2 examples=$3 warnings=${4:-} phases=${5:-examples,coverage,fuzzing,stateful}
    local paths=${6:---exclude-path-regex=^/simulator/}
    echo "== schemathesis as $role ($phases; $paths): at most ${seconds} s, $examples examples per operation"
    # Every check but use_after_free: DELETE /jobs/{id} cancels a job, it does not delete it; the
    # job stays readable as the record of what happened (state `cancelled`, who cancelled it), as
    # openapi.yaml says, where that check expects 404 after any successful DELETE.
    # One worker: graced has the other core, and hypothesis on this Python is not safe to run
    # from several threads (ast.parse fails with "recursion depth mismatch").
    "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml --no-color run openapi.yaml --url "$url" \
        -H "Authorization: Bearer ${tokens[$role]}" \
        "$paths" --phases "$phases" --checks all --exclude-checks use_after_free \
        --max-examples "$examples" --max-time "$seconds" --seed "$seed" --workers 1 \
        --request-timeout 20 --suppress-health-check all ${warnings:+--warnings "$warnings"} || status=1
}
run admin "$admin_seconds" "$max_examples"
# The simulator's fault routes exist only with --simulate and are test equipment, not the product:
# they get every phase but the stateful one, whose state machine made up addresses for them (no
# response links to them) and counted graced's 400 as a rejected valid request.
run admin 20 "$max_examples" "" examples,coverage,fuzzing --include-path-regex=^/simulator/
# Without the missing_auth warning: their 403s are what these passes are for.
role_warnings=missing_test_data,validation_mismatch,missing_deserializer,unsupported_regex,unresolvable_reference
run operator "$role_seconds" 10 "$role_warnings"
run viewer "$role_seconds" 10 "$role_warnings"

# graced must have survived all of it, answer, and stop cleanly.
if ! kill -0 "$pid" 2>/dev/null; then
    echo "graced died during the run:"
    tail -50 "$work/graced.log"
    exit 1
fi
if ! curl -sf -o /dev/null -H "Authorization: Bearer ${tokens[viewer]}" "$url/healthz"; then
    echo "graced no longer answers /healthz"
    status=1
fi
kill -TERM "$pid"
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "graced did not stop within 10 s of SIGTERM"
    status=1
else
    wait "$pid" || { echo "graced exited with status $?"; status=1; }
fi
pid=""
if grep -E "Fatal error|fatal|panic" "$work/graced.log"; then status=1; fi
echo "schemathesis seed: $seed"
exit $status
