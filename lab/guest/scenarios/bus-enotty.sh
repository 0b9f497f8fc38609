# bus-enotty: a bus reset below a root port at its default 16 GT/s. The kernel waits for Data
# Link Layer Link Active, which QEMU 7.2 never reports, and answers ENOTTY after about 2 s
# although the reset happened. The job must fail with that errno and leave the function
# re-read and ready, not in a wrong state.
ensure_driver $VRNG_SLOW vfio-pci
methods_before=$(cat /sys/bus/pci/devices/$VRNG_SLOW/reset_method)
run_job $VRNG_SLOW reset '{"method": "bus", "deadlineSeconds": 30}'
note "job: $(job_summary)"
errno=$(echo "$JOB" | jq -r '[.attempts[] | .errnoName // empty] | last // "none"')
resetting=$(phase_ms resetting)
expect "job $JOB_STATE, wanted failed" [ "$JOB_STATE" = failed ]
expect "last attempt errno $errno, wanted ENOTTY" [ "$errno" = ENOTTY ]
expect "the write took $resetting ms, wanted about 2 s" [ "$resetting" != none ] && [ "$resetting" -ge 1500 ]
request GET /gpus/$VRNG_SLOW
got=$(field '[.state, (.driver // "none"), (.resetMethods | join(" "))] | join("|")')
want="ready|$(driver_of $VRNG_SLOW)|$(cat /sys/bus/pci/devices/$VRNG_SLOW/reset_method)"
note "after: graced $got, sysfs $want"
expect "after the failure graced says $got, sysfs $want" [ "$got" = "$want" ]
expect "reset_method not put back: $(cat /sys/bus/pci/devices/$VRNG_SLOW/reset_method)" \
    [ "$(cat /sys/bus/pci/devices/$VRNG_SLOW/reset_method)" = "$methods_before" ]
ensure_driver $VRNG_SLOW virtio-pci
