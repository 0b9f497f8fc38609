# reset-methods: every reset method of every function, each as a job on the function bound to
# vfio-pci (graced refuses functions a host driver holds); the job records the method and the
# kernel's real timings.
for plan in "$NVME flr bus" "$VRNG flr pm bus" "$NIC pm bus" "$CXL bus"; do
    set -- $plan
    bdf=$1
    shift
    native=$(driver_of $bdf)
    ensure_driver $bdf vfio-pci
    for method in "$@"; do
        run_job $bdf reset "{\"method\": \"$method\", \"deadlineSeconds\": 30}"
        note "$bdf $method: $(job_summary)"
        expect "$bdf $method: job $JOB_STATE" [ "$JOB_STATE" = succeeded ]
        used=$(echo "$JOB" | jq -r '.method.used // empty')
        expect "$bdf $method: method.used is '$used'" [ "$used" = "$method" ]
        expect "$bdf $method: no resetting phase with an end" [ "$(phase_ms resetting)" != none ]
    done
    ensure_driver $bdf $native
done
