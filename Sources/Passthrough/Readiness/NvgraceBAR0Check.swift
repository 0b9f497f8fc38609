import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// nvgrace-gpu's legacy readiness: two BAR0 registers, the C2C link status and the HBM training
/// status, both read 0xFF once the GPU has finished initialising after a reset.
///
/// The registers are read through an mmap of sysfs `resource0` (the kernel refuses read(2) on a
/// memory BAR's resource file). The mapping is made fresh for every observation, so a file that
/// was replaced or a device that was removed and rescanned is never read through a stale mapping.
/// The generic config checks run first: the IDs must be back before BAR0 means anything.
///
/// When the mapping is impossible (a driver such as nvidia holds the regions: EINVAL; or there is no
/// `resource0`) the check records why once and from then on is the generic PCI check.
public struct NvgraceBAR0Check: Sendable {
    /// The kernel's POLL_TIMEOUT_MS: "30s is determined to be sufficient ... on all the Grace based
    /// systems". The engine's default deadline for this kind.
    public static let ceilingSeconds = 30.0
    /// C2C_LINK_BAR0_OFFSET.
    public static let c2cLinkOffset = 0x1498
    /// HBM_TRAINING_BAR0_OFFSET.
    public static let hbmTrainingOffset = 0x200BC
    /// STATUS_READY.
    public static let readyValue: UInt32 = 0xFF
    /// The mapping must reach past the last register.
    static let requiredLength = hbmTrainingOffset + 4

    let pci: PCIConfigCheck
    private(set) var fellBack = false

    init(pci: PCIConfigCheck) {
        self.pci = pci
    }

    /// What one attempt to read the two words gave.
    enum BAR0Read: Hashable {
        case words(c2c: UInt32, hbm: UInt32)
        /// BAR0 cannot be mapped, now or later: fall back, with this note.
        case unavailable(String)
        /// The mapping failed in a way that may pass (the device mid-reset); poll again.
        case failed(String)
    }

    /// Command register bit 1, Memory Space Enable.
    static let memorySpaceEnable: UInt16 = 1 << 1

    mutating func observe(notes: inout [String]) -> ProbeObservation {
        let config: PCIConfigCheck.PolledRegisters
        switch pci.readConfig() {
        case .verdict(let observation): return observation
        case .config(let read): config = read
        }
        if let generic = pci.identity(config) ?? pci.link(config) { return generic }
        if fellBack { return .ready }
        // The kernel refuses to poll BAR0 while memory decoding is off (EIO): the read would be an
        // Unsupported Request, all-ones at best and an asynchronous abort on some arm64 hosts.
        if let command = config.header.command, command & Self.memorySpaceEnable == 0 {
            return .notReady("BAR0 memory decoding is disabled (Command 0x\(hex(command, width: 4)))")
        }
        switch Self.readWords(pci.root.absolute(pci.root.device(pci.bdf) + "/resource0")) {
        case .unavailable(let why):
            fellBack = true
            notes.append(why + "; fell back to the generic PCI checks")
            return .ready
        case .failed(let why):
            return .notReady(why)
        case .words(let c2c, let hbm):
            if c2c == Self.readyValue && hbm == Self.readyValue { return .ready }
            if c2c == 0xFFFF_FFFF || hbm == 0xFFFF_FFFF {
                // In D3hot a function answers only config requests, so BAR reads are all-ones without
                // anything being wrong: the device needs waking (power/control on), not more waiting.
                let power = PowerState.read(bdf: pci.bdf, root: pci.root)
                if power.isD3, let state = power.state {
                    return .notReady("BAR0 reads all-ones in \(state)")
                }
                return .notReady("BAR0 reads all-ones")
            }
            return .notReady(
                "BAR0 C2C link status 0x\(hex(c2c, width: 2)), HBM training 0x\(hex(hbm, width: 2)) "
                    + "(ready is 0xff)")
        }
    }

    /// Maps the start of the file read-only and shared, loads the two words, unmaps.
    static func readWords(_ path: String) -> BAR0Read {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return .unavailable("BAR0 resource0 is missing") }
            return .failed("resource0 open failed: \(KernelError(code: code, path: path).name)")
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            return .failed("resource0 stat failed: \(KernelError(code: errno, path: path).name)")
        }
        guard Int(status.st_size) >= requiredLength else {
            return .unavailable("BAR0 is \(status.st_size) bytes, too small for the readiness registers")
        }
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        let length = (requiredLength + page - 1) / page * page
        let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0)
        guard let base = mapped, base != UnsafeMutableRawPointer(bitPattern: -1) else {
            return mapFailure(errno: Errno(rawValue: errno))
        }
        defer { munmap(base, length) }
        // Plain aligned 32-bit loads from a mapping made just now: the compiler cannot reuse an
        // earlier value, and the device (or the simulator's file) is read on each call. BARs are
        // little-endian.
        let c2c = UInt32(
            littleEndian: UnsafeRawPointer(base).load(fromByteOffset: c2cLinkOffset, as: UInt32.self))
        let hbm = UInt32(
            littleEndian: UnsafeRawPointer(base).load(fromByteOffset: hbmTrainingOffset, as: UInt32.self))
        return .words(c2c: c2c, hbm: hbm)
    }

    /// EINVAL is the kernel's answer while a driver has requested the BAR's region (nvidia, nvme):
    /// that does not change by waiting. Anything else may be transient.
    static func mapFailure(errno: Errno) -> BAR0Read {
        let name = errno.name
        if errno == .invalidArgument {
            return .unavailable("BAR0 mapping refused (EINVAL): a driver holds the regions")
        }
        return .failed("BAR0 mapping failed: \(name)")
    }
}
