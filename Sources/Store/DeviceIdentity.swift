/// What makes a device the same device: its address plus the four PCI IDs.
///
/// A different card at the same BDF is a different identity, so its history starts afresh.
/// IDs are hex strings such as "0x10de"; they are lowercased so that "0x10DE" names the same card.
public struct DeviceIdentity: Hashable, Sendable {
    public var bdf: String
    public var vendorId: String
    public var deviceId: String
    public var subsystemVendorId: String
    public var subsystemDeviceId: String

    public init(
        bdf: String, vendorId: String, deviceId: String, subsystemVendorId: String,
        subsystemDeviceId: String
    ) {
        self.bdf = bdf.lowercased()
        self.vendorId = vendorId.lowercased()
        self.deviceId = deviceId.lowercased()
        self.subsystemVendorId = subsystemVendorId.lowercased()
        self.subsystemDeviceId = subsystemDeviceId.lowercased()
    }
}
