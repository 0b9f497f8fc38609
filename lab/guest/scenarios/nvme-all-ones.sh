# nvme-all-ones: the NVMe drive, idle on vfio-pci with no job on it, stops answering: labinject
# makes its config reads return all-ones for 12 s after an FLR, which this scenario triggers itself
# through a config write (Device Control bit 15), outside graced. The health watch must report
# `all_ones` on GET /gpus/{bdf} within its interval, and `ok` about it again once the drive answers.
ensure_driver $NVME vfio-pci
config=/sys/bus/pci/devices/$NVME/config
byte() { od -An -tu1 -j "$1" -N1 "$config" | tr -d ' '; }
# The PCI Express capability (id 0x10) along the list from 0x34.
cap=$(byte 52)
while [ -n "$cap" ] && [ "$cap" -ne 0 ] && [ "$(byte "$cap")" -ne 16 ]; do cap=$(byte $((cap + 1))); done
expect "no PCI Express capability found" [ -n "$cap" ] && [ "$cap" -ne 0 ]
devctl=$((cap + 8))
high=$(byte $((devctl + 1)))
echo 12000 >$INJECT/ones_window_ms
triggers=$(cat $INJECT/triggers)
# Bit 15 of Device Control is bit 7 of its high byte: Initiate Function Level Reset.
printf "$(printf '\\%03o' $((high | 128)))" | dd of="$config" bs=1 seek=$((devctl + 1)) conv=notrunc 2>/dev/null
expect "the injector saw no FLR" [ "$(cat $INJECT/triggers)" -gt "$triggers" ]
seen=none
until=$(($(labms) + 11000))
while [ "$(labms)" -lt $until ]; do
    request GET /gpus/$NVME
    seen=$(field '[.health.reasons[].reason] | join(",")')
    case ",$seen," in *,all_ones,*) break ;; esac
    usleep 200000
done
note "health while the drive read all-ones: $(field .health.status) [$seen] after $(($(labms) - until + 11000)) ms"
expect "health reasons were [$seen], wanted all_ones" [ "${seen#*all_ones}" != "$seen" ]
echo 0 >$INJECT/ones_window_ms
until=$(($(labms) + 20000))
while [ "$(labms)" -lt $until ]; do
    request GET /gpus/$NVME
    seen=$(field '[.health.reasons[].reason] | join(",")')
    case ",$seen," in *,all_ones,*) ;; *) break ;; esac
    usleep 500000
done
note "health once it answered again: $(field .health.status) [$seen]"
expect "all_ones still reported once the drive answered: [$seen]" [ "${seen#*all_ones}" = "$seen" ]
ensure_driver $NVME nvme
