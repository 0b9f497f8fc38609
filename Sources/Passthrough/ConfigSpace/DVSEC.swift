/// A Designated Vendor-Specific Extended Capability (extended capability id 0x23).
///
/// Several vendors' structures share the one capability id, so a DVSEC is named by the pair
/// (DVSEC vendor id, DVSEC id) from its two extra header registers, not by the capability id.
/// The DVSEC vendor is the owner of the layout (0x1E98 is the CXL consortium), not the function's vendor.
public struct DVSEC: Hashable, Sendable {
    /// Offset of the extended capability header; register offsets in a DVSEC are relative to it.
    public let offset: Int
    /// Header 1 (+4) bits 15:0.
    public let vendorID: UInt16
    /// Header 1 bits 19:16.
    public let revision: UInt8
    /// Header 1 bits 31:20: the structure's length in bytes, header included.
    public let length: Int
    /// Header 2 (+8) bits 15:0.
    public let id: UInt16

    public init(offset: Int, vendorID: UInt16, revision: UInt8, length: Int, id: UInt16) {
        self.offset = offset
        self.vendorID = vendorID
        self.revision = revision
        self.length = length
        self.id = id
    }
}

extension ConfigSpace {
    /// Every DVSEC in the extended capability chain, in chain order. A DVSEC whose extra headers are
    /// cut off by the end of the bytes is left out: without them it cannot be identified.
    public func dvsecs() -> [DVSEC] {
        extendedCapabilities().compactMap { cap in
            guard cap.id == ExtendedCapability.designatedVendorSpecific,
                let header1 = read32(at: cap.offset + 4), let header2 = read16(at: cap.offset + 8)
            else { return nil }
            return DVSEC(
                offset: cap.offset,
                vendorID: UInt16(truncatingIfNeeded: header1),
                revision: UInt8(truncatingIfNeeded: (header1 >> 16) & 0xF),
                length: Int(header1 >> 20),
                id: header2)
        }
    }

    /// The first DVSEC with this vendor and id, as the kernel's `pci_find_dvsec_capability` finds it.
    public func findDVSEC(vendor: UInt16, id: UInt16) -> DVSEC? {
        dvsecs().first { $0.vendorID == vendor && $0.id == id }
    }
}
