# Helpers for the lab's guest scenarios (busybox sh). Sourced by /init.
#
# A scenario is /lab/NAME.sh, sourced in this shell. It calls `expect` for each assertion and
# `note` for what it measured; run_scenario prints one line: `PASS NAME` or `FAIL NAME: why; why`.

API=http://127.0.0.1:8080
# The lab's functions (QEMU layout in lab/run).
NVME=0000:01:00.0      # nvme on rp1 (5 GT/s)
VRNG=0000:02:00.0      # virtio-rng on rp2 (5 GT/s)
NIC=0000:03:00.0       # e1000e on rp3 (5 GT/s)
VRNG_SLOW=0000:04:00.0 # virtio-rng on rp4, left at the default 16 GT/s (bus-enotty)
CXL=0000:0d:00.0       # cxl-type3 behind pxb-cxl and cxl-rp
INJECT=/sys/module/labinject/parameters

# One HTTP request through labhttp (static; curl takes ~250 ms just to start under TCG): sets
# HTTP_CODE, BODY and TIME_MS (connect to last byte).
request() {
    local out
    out=$(labhttp "$@")
    HTTP_CODE=${out%% *}
    TIME_MS=${out#* }
    BODY=$(cat /tmp/lab-body 2>/dev/null)
}

# Waits up to $1 s for /healthz; gives up at once when graced has exited.
wait_healthy() {
    local until=$(($(labms) + $1 * 1000))
    while [ "$(labms)" -lt $until ]; do
        kill -0 "$GRACED_PID" 2>/dev/null || return 1
        request GET /healthz
        [ "$HTTP_CODE" = 200 ] && return 0
        usleep 100000
    done
    return 1
}

# Field of the last BODY (jq filter).
field() { echo "$BODY" | jq -r "$1"; }

driver_of() {
    if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
        basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
    else
        echo none
    fi
}

group_of() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }

# Polls GET /jobs/ID until the job is terminal (at most $2 s, default 60); JOB holds its JSON.
wait_job() {
    local id=$1 tries=$((${2:-60} * 20))
    while [ $tries -gt 0 ]; do
        request GET "/jobs/$id"
        JOB=$BODY
        # graced writes compact JSON; matching it here saves starting jq on every poll.
        case $JOB in *'"state":"queued"'* | *'"state":"running"'*) ;; *) return 0 ;; esac
        usleep 50000
        tries=$((tries - 1))
    done
    return 1
}

# Starts a job (POST /gpus/BDF/KIND with BODY) and waits for it. JOB_STATE is its final state,
# or "refused:<status> <title>" when graced did not accept it.
run_job() {
    local bdf=$1 kind=$2 data=$3
    request POST "/gpus/$bdf/$kind" "$data"
    if [ "$HTTP_CODE" != 202 ]; then
        JOB=$BODY
        JOB_STATE="refused:$HTTP_CODE $(field '.title // empty')"
        return 0
    fi
    JOB_ID=$(field .id)
    if wait_job "$JOB_ID" "${4:-60}"; then
        JOB_STATE=$(echo "$JOB" | jq -r .state)
    else
        JOB_STATE="still-running"
    fi
}

# Milliseconds of a job phase (first occurrence), from graced's timestamps; "none" if absent.
JQ_MS='def ms: .[11:] | rtrimstr("Z") | split(":") | ((.[0]|tonumber)*3600 + (.[1]|tonumber)*60 + (.[2]|tonumber)) * 1000 | floor;'
phase_ms() {
    echo "$JOB" | jq -r "$JQ_MS"' [.phases[] | select(.name == "'"$1"'" and .endedAt != null) | ((.endedAt|ms) - (.startedAt|ms))] | first // "none"'
}

# The job in one line, for the console.
job_summary() {
    echo "$JOB" | jq -r "$JQ_MS"' if .phases == null then "refused: \(.title // .)" else "state=\(.state) used=\(.method.used // "-") "
        + "phases=\([.phases[] | "\(.name):\(if .endedAt then ((.endedAt|ms) - (.startedAt|ms)|tostring) + "ms" else "-" end)"] | join(","))"
        + " attempts=\([.attempts[] | .errnoName // "ok"] | join(","))"
        + " waitedMs=\(.readiness.waitedMs // "-") error=\(.error.title // "-")" end'
}

# Brings BDF to DRIVER (vfio-pci, or its native driver) through graced's bind/unbind jobs.
ensure_driver() {
    local bdf=$1 driver=$2
    [ "$(driver_of "$bdf")" = "$driver" ] && return 0
    if [ "$driver" = vfio-pci ]; then
        run_job "$bdf" bind '{"driver": "vfio-pci"}'
    else
        run_job "$bdf" unbind '{"driver": "original"}'
    fi
    expect "$bdf to $driver: job $JOB_STATE ($(field '.error.detail // empty' | head -c 200))" [ "$JOB_STATE" = succeeded ]
    expect "$bdf driver is $(driver_of "$bdf"), wanted $driver" [ "$(driver_of "$bdf")" = "$driver" ]
}

# expect "what went wrong" TEST...: records a failure of the current scenario when TEST fails.
expect() {
    local why=$1
    shift
    if ! "$@"; then
        WHY="$WHY${WHY:+; }$why"
        return 1
    fi
}

note() { echo "  $SCENARIO: $*"; }

run_scenario() {
    SCENARIO=$1
    WHY=""
    local started
    started=$(labms)
    echo "lab: --- $SCENARIO"
    if [ -f "/lab/$SCENARIO.sh" ]; then
        . "/lab/$SCENARIO.sh"
    else
        WHY="no such scenario"
    fi
    note "took $(($(labms) - started)) ms"
    if [ -z "$WHY" ]; then
        echo "PASS $SCENARIO"
        LAB_PASSED=$((LAB_PASSED + 1))
    else
        echo "FAIL $SCENARIO: $WHY"
        LAB_FAILED=$((LAB_FAILED + 1))
        echo "  graced log (last lines):"
        tail -8 /tmp/graced.log | sed 's/^/  graced| /'
    fi
}
