/// NVIDIA device IDs that the nvgrace-gpu VFIO variant driver claims (Grace Hopper, Grace Blackwell).
///
/// A device is also treated as nvgrace when the host configuration gives firmware memory figures for
/// it: newer parts appear in the driver before they appear in any table we carry.
public enum NvgraceDevices {
    public static let nvidiaVendorID: UInt16 = 0x10de
    public static let deviceIDs: Set<UInt16> = [0x2342, 0x2345, 0x2348, 0x2941, 0x31c2]

    /// The kernel's `quirk_nvidia_no_bus_reset`: 10de:2340 to 237f must never get a bus reset
    /// (it leaves a GH200 unusable until the host reboots).
    public static func forbidsBusReset(vendorID: UInt16, deviceID: UInt16) -> Bool {
        vendorID == nvidiaVendorID && deviceID & 0xffc0 == 0x2340
    }
}
