import Synchronization

/// One device's readiness check, of the kind its inventory record names.
///
/// Made fresh for each wait (the CXL check remembers when its phases began; feeding it an elapsed
/// time smaller than the last one starts the phases over). Every method blocks on sysfs reads, which
/// can stall while the device is in reset: call them from the job's own thread.
public final class ReadinessProbe: Sendable {
    public let kind: ReadinessProbeKind
    public let bdf: BDF
    public let root: SysfsRoot
    public let expected: PCIExpectation

    /// The check's state is locked for a whole observation (reads included); `noteLog` has its own
    /// lock so a status reader asking for notes never waits behind a stalled sysfs read.
    private let check: Mutex<Check>
    private let noteLog = Mutex<[String]>([])

    enum Check: Sendable {
        case pci(PCIConfigCheck)
        case cxl(CXLDVSECCheck)
        case nvgrace(NvgraceBAR0Check)

        mutating func observe(elapsedMs: Int, notes: inout [String]) -> ProbeObservation {
            switch self {
            case .pci(let check):
                return check.observe()
            case .cxl(var check):
                defer { self = .cxl(check) }
                return check.observe(elapsedMs: elapsedMs, notes: &notes)
            case .nvgrace(var check):
                defer { self = .nvgrace(check) }
                return check.observe(notes: &notes)
            }
        }
    }

    private init(kind: ReadinessProbeKind, bdf: BDF, root: SysfsRoot, expected: PCIExpectation) {
        self.kind = kind
        self.bdf = bdf
        self.root = root
        self.expected = expected
        let pci = PCIConfigCheck(bdf: bdf, root: root, expected: expected)
        let check: Check =
            switch kind {
            case .pci: .pci(pci)
            case .cxlDVSEC: .cxl(CXLDVSECCheck(pci: pci))
            case .nvgraceBAR0: .nvgrace(NvgraceBAR0Check(pci: pci))
            }
        self.check = Mutex(check)
    }

    public static func make(kind: ReadinessProbeKind, bdf: BDF, root: SysfsRoot, expected: PCIExpectation)
        -> ReadinessProbe
    {
        ReadinessProbe(kind: kind, bdf: bdf, root: root, expected: expected)
    }

    /// One look at the device. `elapsedMs` is the time since the wait began (monotonic); only checks
    /// with phases of their own (CXL) use it.
    public func observe(elapsedMs: Int) -> ProbeObservation {
        let (observation, added) = check.withLock { check in
            var added: [String] = []
            let observation = check.observe(elapsedMs: elapsedMs, notes: &added)
            return (observation, added)
        }
        if !added.isEmpty { noteLog.withLock { $0.append(contentsOf: added) } }
        return observation
    }

    /// Facts recorded along the way (a fallback taken, when a phase began), oldest first.
    public var notes: [String] { noteLog.withLock { $0 } }

    /// The BARs now against the recorded ones; empty when they match. For after readiness.
    public func verifyLayout() -> [String] {
        LayoutVerifier.verify(bdf: bdf, root: root, expected: expected.bars)
    }
}
