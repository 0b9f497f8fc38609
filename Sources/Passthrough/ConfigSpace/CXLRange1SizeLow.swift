/// The CXL device DVSEC's Range 1 Size Low register: the readiness signal of a CXL memory device.
///
/// nvgrace uses it after a reset on GPUs that carry a CXL device DVSEC: memory is usable once
/// Memory_Info_Valid and Memory_Active are both set, and the device itself says how long to wait for
/// Memory_Active. A read of all-ones is not "not ready" but "not there" (gone, or still in reset),
/// which is why it is checked before any bit: all-ones has both readiness bits set.
public struct CXLRange1SizeLow: Hashable, Sendable {
    /// The CXL consortium's DVSEC vendor id.
    public static let dvsecVendorID: UInt16 = 0x1E98
    /// DVSEC id 0: the PCIe DVSEC for CXL devices.
    public static let dvsecID: UInt16 = 0
    /// Range 1 Size Low, relative to the DVSEC (Range n is at 0x1C + (n - 1) * 0x10).
    public static let offsetInDVSEC = 0x1C

    /// What one read of the register says, in the kernel's terms (`test_device_ready_cxl`).
    public enum Readiness: Hashable, Sendable {
        /// Valid and active: memory may be touched.
        case ready
        /// Readable but not both bits yet: poll again (the kernel's EAGAIN).
        case notReady
        /// All-ones: the function did not answer (the kernel's ENODEV).
        case gone
    }

    public let raw: UInt32

    public init(raw: UInt32) {
        self.raw = raw
    }

    /// Builds the register from its fields (for fixtures and the simulator). Out-of-range values are
    /// masked to their field width.
    public init(memoryInfoValid: Bool, memoryActive: Bool, activeTimeoutCode: UInt8, sizeLowUnits: UInt8 = 0)
    {
        var raw = UInt32(activeTimeoutCode & 0x7) << 13 | UInt32(sizeLowUnits & 0xF) << 28
        if memoryInfoValid { raw |= 1 << 0 }
        if memoryActive { raw |= 1 << 1 }
        self.raw = raw
    }

    public var isAllOnes: Bool { raw == 0xFFFF_FFFF }

    /// Bit 0, Memory_Info_Valid: the size and the other fields can be trusted.
    public var memoryInfoValid: Bool { raw & (1 << 0) != 0 }
    /// Bit 1, Memory_Active: the memory is initialised and usable.
    public var memoryActive: Bool { raw & (1 << 1) != 0 }
    /// Bits 15:13, Memory_Active_Timeout.
    public var activeTimeoutCode: UInt8 { UInt8((raw >> 13) & 0x7) }

    /// How long the device allows for Memory_Active after Memory_Info_Valid: 4^code seconds, with the
    /// reserved codes 5 to 7 clamped to the largest defined value (256 s) as the kernel does.
    public var activeTimeoutSeconds: Int { 1 << (2 * min(Int(activeTimeoutCode), 4)) }

    /// Bits 31:28, Memory_Size_Low, in 256 MiB units.
    public var sizeLowUnits: UInt8 { UInt8(raw >> 28) }
    /// Memory_Size_Low in MiB (the low part of the range size only; Size High holds the rest).
    public var sizeLowMiB: UInt64 { UInt64(sizeLowUnits) * 256 }

    public var readiness: Readiness {
        if isAllOnes { return .gone }
        return memoryInfoValid && memoryActive ? .ready : .notReady
    }
}

extension ConfigSpace {
    /// The CXL device DVSEC and its Range 1 Size Low register, or nil when the function has no such
    /// DVSEC or the register lies past the bytes read.
    public func cxlRange1SizeLow() -> (dvsecOffset: Int, register: CXLRange1SizeLow)? {
        guard let dvsec = findDVSEC(vendor: CXLRange1SizeLow.dvsecVendorID, id: CXLRange1SizeLow.dvsecID),
            let raw = read32(at: dvsec.offset + CXLRange1SizeLow.offsetInDVSEC)
        else { return nil }
        return (dvsec.offset, CXLRange1SizeLow(raw: raw))
    }
}
