/// The IDs a driver's match table looks at: vendor, device, subsystem and the 24-bit class.
///
/// Read from the plain sysfs attributes rather than libpci so planners can ask about one device
/// without enumerating the whole bus.
public struct PCIIdentity: Hashable, Sendable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemDeviceID: UInt16
    /// class << 16 | subclass << 8 | programming interface.
    public var classCode: UInt32

    public init(
        vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16 = 0, subsystemDeviceID: UInt16 = 0,
        classCode: UInt32 = 0
    ) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemDeviceID = subsystemDeviceID
        self.classCode = classCode
    }

    public init(_ function: PCIFunction) {
        self.init(
            vendorID: function.vendorID, deviceID: function.deviceID,
            subsystemVendorID: function.subsystemVendorID, subsystemDeviceID: function.subsystemDeviceID,
            classCode: function.classCode)
    }

    /// The identity of `bdf` from its `vendor`, `device`, `subsystem_*` and `class` files; nil when
    /// the device or its vendor/device IDs cannot be read. Missing subsystem IDs read as 0.
    public init?(root: SysfsRoot, bdf: BDF) {
        let base = root.device(bdf)
        func number(_ name: String) -> UInt32? {
            root.readOptionalString(base + "/" + name).flatMap { HexNumber.parse($0) }
        }
        guard let vendor = number("vendor"), let device = number("device"), vendor <= 0xffff,
            device <= 0xffff
        else { return nil }
        self.init(
            vendorID: UInt16(vendor), deviceID: UInt16(device),
            subsystemVendorID: UInt16(truncatingIfNeeded: number("subsystem_vendor") ?? 0),
            subsystemDeviceID: UInt16(truncatingIfNeeded: number("subsystem_device") ?? 0),
            classCode: (number("class") ?? 0) & 0xff_ffff)
    }

    /// The modalias the kernel announces for a VFIO-override-only ID table entry
    /// (`PCI_DRIVER_OVERRIDE_DEVICE_VFIO`): `vfio_pci:v000010DEd00002342sv...bc03sc02i00`, uppercase hex.
    public var vfioModalias: String {
        "vfio_pci:v\(upper(vendorID, 8))d\(upper(deviceID, 8))sv\(upper(subsystemVendorID, 8))"
            + "sd\(upper(subsystemDeviceID, 8))bc\(upper(classCode >> 16, 2))"
            + "sc\(upper(classCode >> 8 & 0xff, 2))i\(upper(classCode & 0xff, 2))"
    }

    private func upper(_ value: some BinaryInteger, _ width: Int) -> String {
        hex(value, width: width).uppercased()
    }
}
