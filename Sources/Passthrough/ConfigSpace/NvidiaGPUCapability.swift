/// NVIDIA's GPU capability DVSEC, read by nvgrace-gpu to tell Grace Hopper from Grace Blackwell.
///
/// Grace Hopper has a hardware bug that makes MIG need a non-cacheable slice of device memory, so the
/// driver carves 1 GiB of "resmem" off the end. Later parts advertise that they do not need it with
/// bit 0 of the 16-bit word at DVSEC + 0xA. Older parts have no such DVSEC at all, which is why absence
/// means the bug is present.
public enum NvidiaGPUCapability {
    public static let dvsecVendorID: UInt16 = 0x10DE
    public static let dvsecID: UInt16 = 3
    /// The capability bitmap word, relative to the DVSEC.
    public static let bitmapOffset = 0xA
    /// Bitmap bit 0: MIG is supported with cached resmem, i.e. no hardware bug.
    public static let migSupportedWithCachedResmem: UInt16 = 1 << 0
}

extension ConfigSpace {
    /// The capability bitmap word of the NVIDIA GPU DVSEC, or nil when the DVSEC is absent or the word
    /// lies past the bytes read.
    public var nvidiaGPUCapabilityBitmap: UInt16? {
        guard
            let dvsec = findDVSEC(vendor: NvidiaGPUCapability.dvsecVendorID, id: NvidiaGPUCapability.dvsecID)
        else { return nil }
        return read16(at: dvsec.offset + NvidiaGPUCapability.bitmapOffset)
    }

    /// True unless the NVIDIA GPU DVSEC is found and its bit 0 is set, matching the kernel's
    /// `nvgrace_gpu_has_mig_hw_bug`. Only meaningful for a space that is not all-ones: a gone device
    /// has no readable DVSEC and so reports the bug.
    public var hasMigHardwareBug: Bool {
        guard let bitmap = nvidiaGPUCapabilityBitmap else { return true }
        return bitmap & NvidiaGPUCapability.migSupportedWithCachedResmem == 0
    }
}
