# nvme-slow-flr: labinject makes every config read of the NVMe drive return all-ones for 3 s
# after an FLR, so the kernel's post-FLR wait (doubling intervals) keeps the sysfs reset write
# blocked for about 4 s. graced must keep answering GET /gpus within 50 ms meanwhile.
ensure_driver $NVME vfio-pci
echo 3000 >$INJECT/ones_window_ms
request POST /gpus/$NVME/reset '{"method": "flr", "deadlineSeconds": 30}'
expect "reset answered $HTTP_CODE" [ "$HTTP_CODE" = 202 ]
id=$(field .id)
max=0
count=0
slow=0
until=$(($(labms) + 20000))
while [ "$(labms)" -lt $until ]; do
    request GET /gpus
    [ "$HTTP_CODE" = 200 ] || slow=$((slow + 1))
    count=$((count + 1))
    [ "$TIME_MS" -gt "$max" ] && max=$TIME_MS
    [ "$TIME_MS" -gt 50 ] && slow=$((slow + 1))
    request GET /jobs/$id
    JOB=$BODY
    case $JOB in *'"state":"queued"'* | *'"state":"running"'*) ;; *) break ;; esac
    usleep 20000
done
echo 0 >$INJECT/ones_window_ms
state=$(echo "$JOB" | jq -r .state)
resetting=$(phase_ms resetting)
note "job: $(job_summary)"
note "GET /gpus while the reset ran: $count answers, slowest $max ms, $slow over 50 ms or not 200"
expect "job $state" [ "$state" = succeeded ]
expect "the reset write took $resetting ms, wanted >= 3000" [ "$resetting" != none ] && [ "$resetting" -ge 3000 ]
expect "GET /gpus: only $count answers during the reset" [ "$count" -ge 5 ]
expect "GET /gpus: $slow answers over 50 ms or failed (slowest $max ms)" [ "$slow" -eq 0 ]
ensure_driver $NVME nvme
