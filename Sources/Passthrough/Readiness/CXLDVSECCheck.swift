/// Readiness of a device with the CXL device DVSEC, the way nvgrace-gpu waits for Blackwell-Next:
/// Range 1 Size Low must show Memory_Info_Valid within 1 s, then Memory_Active within the timeout
/// the device itself encodes in that register (1 s to 256 s), counted from when valid was seen.
///
/// Stateful (when each phase began), so a probe owns one and feeds it the wait's elapsed time.
/// The IDs are checked first and the link last, as for every device: a GPU that comes back in
/// recovery mode under another device ID must never count as ready, whatever its registers say.
public struct CXLDVSECCheck: Sendable {
    /// How long Memory_Info_Valid may take (the kernel's POLL_QUANTUM_MS before ETIME).
    public static let infoValidTimeoutMs = 1000

    /// The deadline the engine should give a wait on this device: the 1 s for valid plus the
    /// register's Memory_Active timeout. Any margin on top is the engine's choice.
    public static func defaultDeadlineSeconds(register: CXLRange1SizeLow) -> Double {
        Double(infoValidTimeoutMs) / 1000 + Double(register.activeTimeoutSeconds)
    }

    let pci: PCIConfigCheck
    /// When config first answered with the right IDs. Phase 1's second starts there rather than at
    /// the start of the wait: a sysfs reset only returns once config answers, so in practice they
    /// coincide, and a device still in CRS has not begun initialising its memory yet.
    private var answeredAtMs: Int?
    /// When Memory_Info_Valid was first seen, and the timeout code read then (as the kernel fixes
    /// its deadline once, from the value it saw with valid).
    private var validSeen: (atMs: Int, register: CXLRange1SizeLow)?
    private var lastElapsedMs = Int.min
    /// Where the DVSEC was found. Walking the extended chain needs all 4 KiB of config space; after
    /// the first walk one poll reads just the DVSEC's 0x20 bytes, checking its header is still there.
    private var dvsecOffset: Int?

    init(pci: PCIConfigCheck) {
        self.pci = pci
    }

    mutating func observe(elapsedMs: Int, notes: inout [String]) -> ProbeObservation {
        // Time running backwards means a new wait on the same probe: start the phases over.
        if elapsedMs < lastElapsedMs {
            answeredAtMs = nil
            validSeen = nil
        }
        lastElapsedMs = elapsedMs

        let config: PCIConfigCheck.PolledRegisters
        switch pci.readConfig() {
        case .verdict(let observation): return observation
        case .config(let read): config = read
        }
        if let wrongIDs = pci.identity(config) { return wrongIDs }
        let answeredAt = answeredAtMs ?? elapsedMs
        answeredAtMs = answeredAt

        let register = readRegister()
        let registerText =
            register.map { "Range 1 Size Low 0x\(hex($0.raw, width: 8))" }
            ?? "CXL device DVSEC (1e98:0) not found in config space"

        if let register, register.isAllOnes {
            // All-ones has both readiness bits set, so it must never be read as valid or active.
            return .notReady("CXL Range 1 Size Low reads all-ones")
        }

        guard let valid = validSeen else {
            guard let register, register.memoryInfoValid else {
                if elapsedMs - answeredAt > Self.infoValidTimeoutMs {
                    return .failed("Memory_Info_Valid not set within 1 s (\(registerText))")
                }
                return .notReady("waiting for Memory_Info_Valid (\(registerText))")
            }
            validSeen = (elapsedMs, register)
            notes.append(
                "Memory_Info_Valid seen after \(elapsedMs) ms; Memory_Active timeout "
                    + "\(register.activeTimeoutSeconds) s (code \(register.activeTimeoutCode))")
            return activePhase(
                register, validAtMs: elapsedMs, timeout: register, elapsedMs: elapsedMs, config)
        }
        return activePhase(
            register, validAtMs: valid.atMs, timeout: valid.register, elapsedMs: elapsedMs, config)
    }

    /// Range 1 Size Low, or nil when the function has no CXL device DVSEC (or it cannot be read).
    private mutating func readRegister() -> CXLRange1SizeLow? {
        let path = pci.root.device(pci.bdf) + "/config"
        if let offset = dvsecOffset {
            let length = CXLRange1SizeLow.offsetInDVSEC + 4
            if let bytes = try? pci.root.readBytes(path, offset: offset, count: length), bytes.count == length
            {
                // Offsets relative to the DVSEC, so ConfigSpace's little-endian readers apply.
                let dvsec = ConfigSpace(bytes)
                let header = dvsec.read32(at: 0)
                if header.map({ UInt16(truncatingIfNeeded: $0) })
                    == ExtendedCapability.designatedVendorSpecific,
                    dvsec.read16(at: 4) == CXLRange1SizeLow.dvsecVendorID,
                    dvsec.read16(at: 8) == CXLRange1SizeLow.dvsecID,
                    let raw = dvsec.read32(at: CXLRange1SizeLow.offsetInDVSEC)
                {
                    return CXLRange1SizeLow(raw: raw)
                }
                // All-ones here is the register of a function that stopped answering mid-poll.
                if header == 0xFFFF_FFFF { return CXLRange1SizeLow(raw: 0xFFFF_FFFF) }
            }
            dvsecOffset = nil
        }
        guard let bytes = try? pci.root.readBytes(path, offset: 0, count: ConfigSpace.extendedSize),
            let located = ConfigSpace(bytes).cxlRange1SizeLow()
        else { return nil }
        dvsecOffset = located.dvsecOffset
        return located.register
    }

    private func activePhase(
        _ register: CXLRange1SizeLow?, validAtMs: Int, timeout: CXLRange1SizeLow, elapsedMs: Int,
        _ config: PCIConfigCheck.PolledRegisters
    ) -> ProbeObservation {
        if let register, register.memoryInfoValid && register.memoryActive {
            return pci.link(config) ?? .ready
        }
        let seconds = timeout.activeTimeoutSeconds
        if elapsedMs - validAtMs > seconds * 1000 {
            return .failed(
                "Memory_Active not set within \(seconds) s (timeout code \(timeout.activeTimeoutCode))")
        }
        let now = register.map { "0x\(hex($0.raw, width: 8))" } ?? "unreadable"
        return .notReady(
            "Memory_Info_Valid seen, waiting for Memory_Active (Range 1 Size Low \(now), up to \(seconds) s)")
    }
}
