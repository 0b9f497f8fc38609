# cxl-escalate: labinject keeps Memory_Active low for 12 s after a bus reset of the CXL device,
# longer than the bus rung's share of an escalating reset (20 s over two rungs: bus, then remove
# and rescan; the device has no function-level method). The job must record the bus rung as
# not_ready, remove the function, rescan its parent bus, bind it back to vfio-pci, and succeed
# once the window has closed.
reg=0x128
memory_active() { [ $((0x$(od -An -tx4 -j $((reg)) -N 4 /sys/bus/pci/devices/$CXL/config | tr -d ' ') & 2)) -ne 0 ]; }
# jq filters kept in variables: busybox sh cannot parse them inside $(...) in double quotes.
LADDER='[.ladder.rungs[] | .step + "=" + (.allowed | tostring)] | join(" ")'
RUNGS='[.rungs[]? | .method + "=" + (.outcome // "-")] | join(" ")'
ensure_driver $CXL vfio-pci
request POST /gpus/$CXL/reset '{"method": "escalate", "dryRun": true}'
ladder=$(field "$LADDER")
note "ladder: $ladder"
# Timeout code 2 (16 s) so that the probe waits the whole share instead of giving up at once.
echo 2 >$INJECT/cxl_timeout_code
echo 12000 >$INJECT/cxl_window_ms
run_job $CXL reset '{"method": "escalate", "deadlineSeconds": 20}' 40
note "escalate: $(job_summary)"
rungs=$(echo "$JOB" | jq -r "$RUNGS")
detail=$(echo "$JOB" | jq -r '.error.detail // empty' | head -c 200)
note "rungs: $rungs"
expect "escalate: job $JOB_STATE ($detail)" [ "$JOB_STATE" = succeeded ]
expect "escalate: rungs $rungs" [ "$rungs" = "bus=not_ready remove+rescan=recovered" ]
expect "escalate: driver after the rescan is $(driver_of $CXL), wanted vfio-pci" [ "$(driver_of $CXL)" = vfio-pci ]
echo 0 >$INJECT/cxl_window_ms
echo -1 >$INJECT/cxl_timeout_code
until=$(($(labms) + 6000))
while ! memory_active && [ "$(labms)" -lt $until ]; do usleep 50000; done
ensure_driver $CXL cxl_pci
