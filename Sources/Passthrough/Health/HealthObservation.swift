/// One cheap look at an idle GPU through the seam: its power state, the few config registers the
/// verdicts need, the AER counters, and what its upstream port can do.
///
/// It never wakes the device: the kernel resumes a function in D3cold to serve a config read (and
/// only then: a D3hot function answers config requests as it is), so config space is not read when
/// `power_state` says D3cold. No BAR is touched (they read all-ones in D3hot anyway).
///
/// It reads config space a dword at a time, as the kernel does, and only the dwords it looks at:
/// the IDs (0x00), the subsystem IDs (0x2C), Link Capabilities and Link Status. In a guest each
/// dword traps to the hypervisor (20-36 µs), so the 64 dwords of a 256-byte read cost 1.3-2.3 ms a
/// GPU a look where these four cost about 0.1 ms. Finding the PCI Express capability walks the
/// capability list once; the caller keeps its offset (`pciExpressOffset`) for the next look.
public struct HealthObservation: Hashable, Sendable {
    public var power: PowerState
    /// Nil when not read (D3cold, or the file vanished); empty or short when the read failed. A look
    /// holds the header's first 64 bytes with only the IDs and subsystem IDs read (the rest zero).
    public var config: ConfigSpace?
    /// The PCI Express capability's link registers, nil without one (or when not read).
    public var linkCapabilities: PCIeLinkCapabilities?
    public var linkStatus: PCIeLinkStatus?
    /// Where the PCI Express capability is (0: the function has none), nil when not found this look.
    public var pciExpressOffset: Int?
    /// `TOTAL_ERR_*` of `aer_dev_fatal`, `aer_dev_nonfatal`, `aer_dev_correctable`, where sysfs has them.
    public var aer: [HealthReason: UInt64]
    /// Maximum speed (GT/s) and width of the upstream port, which bound what the link can train to.
    public var upstreamMaxSpeed: Double?
    public var upstreamMaxWidth: Int?

    /// From a whole config image (the link registers are found in it).
    public init(
        power: PowerState, config: ConfigSpace?, aer: [HealthReason: UInt64] = [:],
        upstreamMaxSpeed: Double? = nil, upstreamMaxWidth: Int? = nil
    ) {
        self.init(
            power: power, config: config, linkCapabilities: config?.linkCapabilities,
            linkStatus: config?.linkStatus, pciExpressOffset: config?.pciExpressCapability?.offset, aer: aer,
            upstreamMaxSpeed: upstreamMaxSpeed, upstreamMaxWidth: upstreamMaxWidth)
    }

    public init(
        power: PowerState, config: ConfigSpace?, linkCapabilities: PCIeLinkCapabilities?,
        linkStatus: PCIeLinkStatus?, pciExpressOffset: Int?, aer: [HealthReason: UInt64],
        upstreamMaxSpeed: Double?, upstreamMaxWidth: Int?
    ) {
        self.power = power
        self.config = config
        self.linkCapabilities = linkCapabilities
        self.linkStatus = linkStatus
        self.pciExpressOffset = pciExpressOffset
        self.aer = aer
        self.upstreamMaxSpeed = upstreamMaxSpeed
        self.upstreamMaxWidth = upstreamMaxWidth
    }

    /// The AER files and the reason their rise reports.
    static let aerFiles: [(file: String, reason: HealthReason)] = [
        ("aer_dev_fatal", .aerFatal), ("aer_dev_nonfatal", .aerNonfatal),
        ("aer_dev_correctable", .aerCorrectable),
    ]

    /// The header bytes a look holds: enough for the IDs and the subsystem IDs at 0x2C.
    static let headerBytes = 0x40

    /// The function's files are read through its folder held open (one name looked up per file, not
    /// the whole path): the watch reads them for every GPU every few seconds. `pciExpressAt` is
    /// the offset an earlier look found (0: none); nil walks the capability list to find it.
    public static func read(bdf: BDF, upstream: BDF?, root: SysfsRoot, pciExpressAt: Int? = nil)
        -> HealthObservation
    {
        root.withFolder(root.device(bdf)) { folder in
            let power = PowerState.read(in: folder)
            var registers = LookRegisters()
            if !power.isD3cold {
                registers = readRegisters(folder, pciExpressAt: pciExpressAt)
            }
            var aer: [HealthReason: UInt64] = [:]
            for (file, reason) in aerFiles {
                if let text = folder.readAttribute(file), let total = aerTotal(text) {
                    aer[reason] = total
                }
            }
            let upstreamFolder = upstream.map(root.device)
            return HealthObservation(
                power: power, config: registers.header, linkCapabilities: registers.linkCapabilities,
                linkStatus: registers.linkStatus, pciExpressOffset: registers.pciExpressOffset, aer: aer,
                upstreamMaxSpeed: upstreamFolder.flatMap { root.readAttribute($0 + "/max_link_speed") }
                    .flatMap(LinkSpeed.parse),
                upstreamMaxWidth: upstreamFolder.flatMap { root.readAttribute($0 + "/max_link_width") }
                    .flatMap(LinkSpeed.parseWidth))
        }
    }

    /// What a look read of config space.
    struct LookRegisters {
        var header: ConfigSpace?
        var linkCapabilities: PCIeLinkCapabilities?
        var linkStatus: PCIeLinkStatus?
        var pciExpressOffset: Int?
    }

    /// The IDs first: a function that does not answer (all-ones, short, gone) is read no further.
    private static func readRegisters(_ folder: borrowing SysfsFolder, pciExpressAt: Int?) -> LookRegisters {
        guard let ids = try? folder.readRegisters("config", [(0x00, 4)]).first else { return LookRegisters() }
        guard ids.count == 4, !ConfigSpace(ids).isAllOnes else {
            return LookRegisters(header: ConfigSpace(ids))
        }
        var offset = pciExpressAt
        if offset == nil { offset = findPCIExpress(folder) }
        var ranges = [(offset: 0x2C, count: 4)]
        if let offset, offset > 0 { ranges += [(offset + 0x0C, 4), (offset + 0x10, 4)] }
        guard let reads = try? folder.readRegisters("config", ranges), reads.allSatisfy({ $0.count == 4 })
        else { return LookRegisters(header: ConfigSpace(ids)) }
        var header = ids + [UInt8](repeating: 0, count: headerBytes - 4)
        header.replaceSubrange(0x2C..<0x30, with: reads[0])
        var result = LookRegisters(header: ConfigSpace(header), pciExpressOffset: offset)
        if reads.count == 3 {
            result.linkCapabilities = ConfigSpace(reads[1]).read32(at: 0).map(PCIeLinkCapabilities.init)
            result.linkStatus = ConfigSpace(reads[2]).read16(at: 2).map(PCIeLinkStatus.init)
        }
        return result
    }

    /// The offset of the PCI Express capability along the capability list (0: none; nil: the list
    /// could not be read), a dword a capability: the pointer at 0x34, then each capability's header.
    private static func findPCIExpress(_ folder: borrowing SysfsFolder) -> Int? {
        guard let pointer = try? folder.readRegisters("config", [(0x34, 4)]).first, pointer.count == 4 else {
            return nil
        }
        var offset = Int(pointer[0] & 0xFC)
        var seen: Set<Int> = []
        while offset >= 0x40, offset < ConfigSpace.conventionalSize, seen.insert(offset).inserted {
            guard let header = try? folder.readRegisters("config", [(offset, 4)]).first, header.count == 4
            else {
                return nil
            }
            if header[0] == Capability.pciExpress { return offset }
            if header == [0xFF, 0xFF, 0xFF, 0xFF] { return nil }
            offset = Int(header[1] & 0xFC)
        }
        return 0
    }

    /// The `TOTAL_ERR_COR` / `TOTAL_ERR_FATAL` / `TOTAL_ERR_NONFATAL` line of an AER stats file
    /// (one `NAME count` per line).
    static func aerTotal(_ text: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let fields = sysfsFields(line)
            if fields.count == 2, fields[0].hasPrefix("TOTAL_ERR_"), let value = UInt64(fields[1]) {
                return value
            }
        }
        return nil
    }
}
