# reconcile: the NVMe drive, bound to vfio-pci through graced (a desired binding), is unbound
# through sysfs directly, behind graced's back. graced must hear of the driver change from the
# kernel's unbind uevent (the rescan runs every 300 s here), run a reconcile job and put it back on
# vfio-pci.
ensure_driver $NVME vfio-pci
request GET /bindings
expect "GET /bindings answered $HTTP_CODE" [ "$HTTP_CODE" = 200 ]
desired=$(field '.items[] | select(.bdf == "'$NVME'") | .desiredDriver')
expect "desired driver of $NVME is '$desired', wanted vfio-pci" [ "$desired" = vfio-pci ]
echo $NVME >/sys/bus/pci/drivers/vfio-pci/unbind
expect "still on $(driver_of $NVME) after the direct unbind" [ "$(driver_of $NVME)" = none ]
started=$(labms)
until=$((started + 15000))
while [ "$(driver_of $NVME)" != vfio-pci ] && [ "$(labms)" -lt $until ]; do usleep 50000; done
note "back on $(driver_of $NVME) after $(($(labms) - started)) ms"
expect "driver is $(driver_of $NVME) 15 s after the direct unbind, wanted vfio-pci" [ "$(driver_of $NVME)" = vfio-pci ]
# The reconcile job is in the history like any job; wait until it has ended.
until=$(($(labms) + 10000))
while [ "$(labms)" -lt $until ]; do
    request GET "/jobs?gpu=$NVME&limit=5"
    JOB=$(field '[.items[] | select(.kind == "reconcile")] | first // empty')
    case $JOB in *'"state":"succeeded"'*) break ;; esac
    usleep 100000
done
note "reconcile job: $(job_summary)"
expect "no succeeded reconcile job for $NVME" [ "$(echo "$JOB" | jq -r '.state // empty')" = succeeded ]
ensure_driver $NVME nvme
