/// What a device looked like before a reset: what it must look like again to count as back.
public struct PCIExpectation: Hashable, Sendable, Codable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// `current_link_speed` in GT/s; nil skips the speed check.
    public var linkSpeed: Double?
    /// `current_link_width` in lanes; nil skips the width check.
    public var linkWidth: Int?
    /// The BARs as recorded; only `verifyLayout` looks at them (a changed BAR is not "not ready").
    public var bars: [BAR]

    public init(vendorID: UInt16, deviceID: UInt16, linkSpeed: Double?, linkWidth: Int?, bars: [BAR]) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.linkSpeed = linkSpeed
        self.linkWidth = linkWidth
        self.bars = bars
    }

    /// The expectation from the inventory's record; nil when its IDs are not `0x`-prefixed 16-bit hex
    /// (the inventory always writes them so; anything else is a corrupt record, not a device).
    public init?(_ gpu: GPUDevice) {
        guard let vendor = Self.parseID(gpu.vendorId), let device = Self.parseID(gpu.deviceId) else {
            return nil
        }
        self.init(
            vendorID: vendor, deviceID: device, linkSpeed: gpu.link.currentSpeed,
            linkWidth: gpu.link.currentWidth, bars: gpu.bars)
    }

    /// Records the device as it is now: IDs from `config`, the link from sysfs, the BARs from
    /// `resource`. Nil when the IDs cannot be read (device gone, all-ones, or CRS) or `resource`
    /// does not parse: there is nothing trustworthy to record.
    public static func record(bdf: BDF, root: SysfsRoot) -> PCIExpectation? {
        let folder = root.device(bdf)
        guard let bytes = try? root.readBytes(folder + "/config", offset: 0, count: 4) else { return nil }
        let config = ConfigSpace(bytes)
        guard let vendor = config.vendorID, let device = config.deviceID, !config.isAllOnes,
            vendor != PCIConfigCheck.crsVendorID,
            let resource = root.readOptionalString(folder + "/resource"),
            let bars = try? ResourceFile.bars(resource)
        else { return nil }
        return PCIExpectation(
            vendorID: vendor, deviceID: device,
            linkSpeed: root.readOptionalString(folder + "/current_link_speed").flatMap(LinkSpeed.parse),
            linkWidth: root.readOptionalString(folder + "/current_link_width").flatMap(LinkSpeed.parseWidth),
            bars: bars)
    }

    /// `vvvv:dddd`, the way lspci -n spells a pair.
    public var idText: String { hex(vendorID, width: 4) + ":" + hex(deviceID, width: 4) }

    private static func parseID(_ text: String) -> UInt16? {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        return HexNumber.parse(text)
    }
}
