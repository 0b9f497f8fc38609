/// Link Capabilities (PCI Express capability + 0x0C): what the port can do.
public struct PCIeLinkCapabilities: Hashable, Sendable {
    public let raw: UInt32

    public init(raw: UInt32) {
        self.raw = raw
    }

    /// Max Link Speed, bits 3:0: a code, 1 = 2.5 GT/s up to 6 = 64 GT/s (see `LinkSpeed`).
    public var maxSpeedCode: UInt8 { UInt8(raw & 0xF) }
    /// Maximum Link Width, bits 9:4, in lanes.
    public var maxWidth: Int { Int((raw >> 4) & 0x3F) }
}

/// Link Status (PCI Express capability + 0x12): what the link is doing now.
public struct PCIeLinkStatus: Hashable, Sendable {
    public let raw: UInt16

    public init(raw: UInt16) {
        self.raw = raw
    }

    /// Builds the register the way a device would report it (for fixtures and the simulator).
    public init(speedCode: UInt8, width: Int, linkTraining: Bool, dataLinkLayerLinkActive: Bool) {
        var raw = UInt16(speedCode & 0xF) | UInt16(truncatingIfNeeded: width & 0x3F) << 4
        if linkTraining { raw |= 1 << 11 }
        if dataLinkLayerLinkActive { raw |= 1 << 13 }
        self.raw = raw
    }

    /// Current Link Speed, bits 3:0 (same codes as Max Link Speed).
    public var currentSpeedCode: UInt8 { UInt8(raw & 0xF) }
    /// Negotiated Link Width, bits 9:4; 0 while the link is down.
    public var width: Int { Int((raw >> 4) & 0x3F) }
    /// Bit 11: the link is (re)training, so speed and width are not settled yet.
    public var linkTraining: Bool { raw & (1 << 11) != 0 }
    /// Bit 13: the data link layer is up. Only meaningful on ports that advertise the reporting
    /// capability (downstream ports), so an endpoint reading 0 here says nothing.
    public var dataLinkLayerLinkActive: Bool { raw & (1 << 13) != 0 }
}

extension ConfigSpace {
    /// The PCI Express capability (id 0x10), if the function has one.
    public var pciExpressCapability: Capability? { capability(Capability.pciExpress) }

    /// Link Capabilities, or nil without a PCI Express capability or with the register cut off.
    public var linkCapabilities: PCIeLinkCapabilities? {
        guard let cap = pciExpressCapability, let raw = read32(at: cap.offset + 0x0C) else { return nil }
        return PCIeLinkCapabilities(raw: raw)
    }

    /// Link Status, or nil without a PCI Express capability or with the register cut off.
    public var linkStatus: PCIeLinkStatus? {
        guard let cap = pciExpressCapability, let raw = read16(at: cap.offset + 0x12) else { return nil }
        return PCIeLinkStatus(raw: raw)
    }

    /// Device Capabilities bit 28, Function Level Reset: whether the kernel may offer `flr`.
    /// Nil when there is no PCI Express capability to ask.
    public var supportsFunctionLevelReset: Bool? {
        guard let cap = pciExpressCapability, let raw = read32(at: cap.offset + 0x04) else { return nil }
        return raw & (1 << 28) != 0
    }
}
