# inventory: GET /gpus agrees with the guest's /sys for every lab function: IDs, driver, IOMMU
# group, reset methods, readiness probe; and the CXL DVSEC really sits at 0x10c.
request GET /gpus
expect "GET /gpus answered $HTTP_CODE" [ "$HTTP_CODE" = 200 ]
GPUS=$BODY
for bdf in $NVME $VRNG $NIC $CXL; do
    sys=/sys/bus/pci/devices/$bdf
    item=$(echo "$GPUS" | jq -c --arg b "$bdf" '.items[] | select(.bdf == $b)')
    if [ -z "$item" ]; then
        expect "$bdf is not listed" false
        continue
    fi
    got=$(echo "$item" | jq -r '[.vendorId, .deviceId, (.driver // "none"), (.iommuGroup.id // "none"), (.resetMethods | join(" ")), .readinessProbe, .state] | join("|")')
    probe=pci
    [ "$bdf" = "$CXL" ] && probe=cxl-dvsec
    want="$(cat $sys/vendor)|$(cat $sys/device)|$(driver_of $bdf)|$(group_of $bdf)|$(cat $sys/reset_method)|$probe|ready"
    note "$bdf graced: $got"
    expect "$bdf: graced says $got, sysfs says $want" [ "$got" = "$want" ]
done

# The DVSEC as the kernel exposes it: extended capability 0x23 at 0x10c, DVSEC vendor 0x1e98 and
# id 0 (CXL device), and Range 1 Size Low with Memory_Info_Valid and Memory_Active set.
dword() { od -An -tx4 -j $(($2)) -N 4 "/sys/bus/pci/devices/$1/config" | tr -d ' '; }
header=$(dword $CXL 0x10c)
dvsec1=$(dword $CXL 0x110)
dvsec2=$(dword $CXL 0x114)
range=$(dword $CXL 0x128)
note "CXL config 0x10c=$header 0x110=$dvsec1 0x114=$dvsec2 0x128=$range"
expect "CXL ext cap at 0x10c is $header, not a DVSEC (0x23)" [ $((0x$header & 0xffff)) -eq $((0x23)) ]
expect "CXL DVSEC vendor is ${dvsec1#????}, not 1e98" [ $((0x$dvsec1 & 0xffff)) -eq $((0x1e98)) ]
expect "CXL DVSEC id is $((0x$dvsec2 & 0xffff)), not 0" [ $((0x$dvsec2 & 0xffff)) -eq 0 ]
expect "CXL Range 1 Size Low $range lacks Memory_Info_Valid|Memory_Active" [ $((0x$range & 3)) -eq 3 ]
