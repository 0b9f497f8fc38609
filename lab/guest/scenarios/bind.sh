# bind: NVMe to vfio-pci and back to nvme, both through graced's jobs; /dev/vfio/<group> comes and goes.
group=$(group_of $NVME)
ensure_driver $NVME nvme
run_job $NVME bind '{"driver": "vfio-pci"}'
note "bind: $(job_summary)"
expect "bind job $JOB_STATE" [ "$JOB_STATE" = succeeded ]
expect "driver after bind is $(driver_of $NVME)" [ "$(driver_of $NVME)" = vfio-pci ]
expect "/dev/vfio/$group missing after bind" [ -e /dev/vfio/$group ]
request GET /gpus/$NVME
expect "GET says driver $(field .driver) after bind" [ "$(field .driver)" = vfio-pci ]

run_job $NVME unbind '{"driver": "original"}'
note "unbind: $(job_summary)"
expect "unbind job $JOB_STATE" [ "$JOB_STATE" = succeeded ]
expect "driver after unbind is $(driver_of $NVME)" [ "$(driver_of $NVME)" = nvme ]
expect "/dev/vfio/$group still there after unbind" [ ! -e /dev/vfio/$group ]
request GET /gpus/$NVME
expect "GET says driver $(field .driver) after unbind" [ "$(field .driver)" = nvme ]
