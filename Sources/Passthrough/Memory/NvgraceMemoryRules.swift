import SystemPackage

/// Why the nvgrace-gpu rules refuse a memory description. Each case carries the errno the kernel's
/// probe would fail with, so a refusal here reads the same as the driver's.
public enum NvgraceMemoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The firmware reports no device memory: on these machines that means the C2C link is down.
    case noMemory
    /// The length is smaller than the resmem carve-out, or base plus length passes 2^64.
    case overflow(physicalBase: UInt64, length: UInt64)
    /// After rounding down to 512 MiB blocks nothing is left for usemem.
    case noUsableMemory(length: UInt64)

    /// ENOMEM, EOVERFLOW, EINVAL.
    public var errno: Errno {
        switch self {
        case .noMemory: Errno.noMemory
        case .overflow: Errno.overflow
        case .noUsableMemory: .invalidArgument
        }
    }

    public var description: String {
        switch self {
        case .noMemory:
            "device memory length is 0 (C2C link down?)"
        case .overflow(let base, let length):
            "device memory base 0x\(hex(base, width: 1)) length 0x\(hex(length, width: 1)) overflows"
        case .noUsableMemory(let length):
            "device memory length 0x\(hex(length, width: 1)) leaves no usemem after the resmem carve-out"
        }
    }
}

/// The usemem/resmem split that nvgrace-gpu applies to a GPU's device memory
/// (`nvgrace_gpu_init_nvdev_struct` in the kernel), reproduced so GraceAPI can record what a guest
/// will see without the driver bound.
///
/// The guest sees each region as a 64-bit BAR whose size is the region length rounded up to a power
/// of two; the difference is a hole that reads all-ones. The usemem BAR size is computed before the
/// 512 MiB round-down, which is how a 95.875 GiB device still gets a 128 GiB usemem BAR.
public enum NvgraceMemoryRules {
    /// Carved off the end for Grace Hopper's MIG hardware bug.
    public static let resmemSize: UInt64 = 1 << 30
    /// usemem must be a whole number of these: a fixed contract between GPU firmware and the driver.
    public static let memoryBlockSize: UInt64 = 512 << 20
    /// The guest BAR of each region.
    public static let resmemBAR = 2
    public static let usememBAR = 4

    /// The regions of a device with `length` bytes of memory at `physicalBase`.
    ///
    /// Regions are listed in address order: usemem from the base, then resmem (only with the bug)
    /// immediately after it, ending where the memory ends.
    public static func layout(
        physicalBase: UInt64, length: UInt64, hasMigHardwareBug: Bool, source: String
    ) throws(NvgraceMemoryError) -> DeviceMemory {
        guard length > 0 else { throw .noMemory }
        let carveOut = hasMigHardwareBug ? resmemSize : 0
        let (unrounded, underflow) = length.subtractingReportingOverflow(carveOut)
        guard !underflow else { throw .overflow(physicalBase: physicalBase, length: length) }
        // The kernel rounds 0 up to an undefined value before failing; fail first instead.
        guard unrounded > 0 else { throw .noUsableMemory(length: length) }
        guard let usememBARSize = roundUpToPowerOfTwo(unrounded) else {
            throw .overflow(physicalBase: physicalBase, length: length)
        }

        guard hasMigHardwareBug else {
            let usemem = MemoryRegion(
                name: .usemem, bar: usememBAR, physicalBase: physicalBase, length: unrounded,
                reportedSize: usememBARSize)
            return DeviceMemory(
                source: source, physicalBase: physicalBase, length: length, migHardwareBug: false,
                regions: [usemem])
        }

        let usememLength = unrounded & ~(memoryBlockSize - 1)
        guard usememLength > 0 else { throw .noUsableMemory(length: length) }
        let (resmemBase, baseOverflow) = physicalBase.addingReportingOverflow(usememLength)
        guard !baseOverflow else { throw .overflow(physicalBase: physicalBase, length: length) }
        // At least the 1 GiB carve-out, plus whatever the round-down took (under 512 MiB).
        let resmemLength = length - usememLength
        guard let resmemBARSize = roundUpToPowerOfTwo(resmemLength) else {
            throw .overflow(physicalBase: physicalBase, length: length)
        }
        let usemem = MemoryRegion(
            name: .usemem, bar: usememBAR, physicalBase: physicalBase, length: usememLength,
            reportedSize: usememBARSize)
        let resmem = MemoryRegion(
            name: .resmem, bar: resmemBAR, physicalBase: resmemBase, length: resmemLength,
            reportedSize: resmemBARSize)
        return DeviceMemory(
            source: source, physicalBase: physicalBase, length: length, migHardwareBug: true,
            regions: [usemem, resmem])
    }

    /// The smallest power of two not below `value` (`value` itself when it is one); nil for 0 and
    /// when the answer does not fit in 64 bits.
    public static func roundUpToPowerOfTwo(_ value: UInt64) -> UInt64? {
        guard value > 0 else { return nil }
        let shift = UInt64.bitWidth - (value - 1).leadingZeroBitCount
        guard shift < UInt64.bitWidth else { return nil }
        return 1 << UInt64(shift)
    }
}
