import GraceTestSupport
import Synchronization
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// A deadline `milliseconds` from now.
func deadline(inMs milliseconds: Int) -> ContinuousClock.Instant {
    ContinuousClock.now + .milliseconds(milliseconds)
}

/// A hand-written sysfs tree with one device, for checks that are simpler to show byte by byte than
/// through the simulator.
struct ReadinessTree {
    static let device = bdf("0000:41:00.0")
    static let bar0 = BAR(index: 0, start: 0x9a00_0000, size: 32 << 20, is64Bit: true, prefetchable: false)
    static let bar2 = BAR(
        index: 2, start: 0x2000_0000_0000, size: 64 << 30, is64Bit: true, prefetchable: true)
    static let expected = PCIExpectation(
        vendorID: 0x10DE, deviceID: 0x2342, linkSpeed: 32, linkWidth: 16, bars: [bar0, bar2])
    /// Where the CXL DVSEC's Range 1 Size Low lands in `config(cxl:)`.
    static let cxlRegisterOffset = 0x100 + CXLRange1SizeLow.offsetInDVSEC

    let folder: String
    let root: SysfsRoot
    var files: TreeFiles { TreeFiles(root: root) }
    var devicePath: String { root.device(Self.device) }

    init() throws {
        folder = makeTemporaryFolder("/tmp/graceapi-readiness-XXXXXX")
        root = SysfsRoot(path: folder + "/sys")
        try files.makeFolders(devicePath + "/power")
        try write(config: Self.config())
        try write("current_link_speed", "32.0 GT/s PCIe")
        try write("current_link_width", "16")
        try write("power_state", "D0")
        try write("power/runtime_status", "active")
        try write("power/control", "on")
        try write("resource", Self.resource([Self.bar0, Self.bar2]))
    }

    func remove() {
        try? TreeFiles(root: SysfsRoot(path: folder)).removeTree("")
    }

    func write(_ name: String, _ text: String) throws {
        try files.replace(devicePath + "/" + name, text: text + "\n")
    }

    func write(config bytes: [UInt8]) throws {
        try files.replace(devicePath + "/config", bytes)
    }

    func delete(_ name: String) {
        files.remove(devicePath + "/" + name)
    }

    /// An endpoint with the given IDs and a PCI Express capability at 0x40 whose Link Status says
    /// `linkStatus`; with `cxl`, a CXL device DVSEC at 0x100 whose Range 1 Size Low is that value.
    static func config(
        vendor: UInt16 = 0x10DE, device: UInt16 = 0x2342,
        linkStatus: PCIeLinkStatus = PCIeLinkStatus(
            speedCode: 5, width: 16, linkTraining: false, dataLinkLayerLinkActive: true),
        cxl: CXLRange1SizeLow? = nil
    ) -> [UInt8] {
        var fixture = ConfigSpaceFixture(vendor: vendor, device: device)
        fixture.capabilityList(first: 0x40)
        fixture.put16(0x0006, at: 0x04)  // Command: memory space and bus master enabled
        fixture.capability(Capability.pciExpress, at: 0x40, next: 0)
        fixture.put16(linkStatus.raw, at: 0x40 + 0x12)
        if let cxl {
            fixture.dvsec(at: 0x100, next: 0, vendor: CXLRange1SizeLow.dvsecVendorID, id: 0)
            fixture.put32(cxl.raw, at: cxlRegisterOffset)
        }
        return fixture.bytes
    }

    /// The `resource` text the kernel would print for these BARs (13 lines, an endpoint's).
    static func resource(_ bars: [BAR]) -> String {
        (0..<13).map { index in
            guard let bar = bars.first(where: { $0.index == index }) else {
                return "0x0000000000000000 0x0000000000000000 0x0000000000000000"
            }
            var flags: UInt64 = ResourceFile.memoryFlag
            if bar.is64Bit { flags |= ResourceFile.memory64Flag }
            if bar.prefetchable { flags |= ResourceFile.prefetchFlag }
            return "0x\(hex(bar.start, width: 16)) 0x\(hex(bar.start + bar.size - 1, width: 16)) "
                + "0x\(hex(flags, width: 16))"
        }.joined(separator: "\n")
    }

    /// A sparse `resource0` of BAR0's size with both nvgrace readiness words set to `value`.
    func writeBAR0(words value: UInt32, size: UInt64 = 32 << 20) throws {
        try files.createSparse(devicePath + "/resource0", size: size)
        for offset in [NvgraceBAR0Check.c2cLinkOffset, NvgraceBAR0Check.hbmTrainingOffset] {
            try files.patch(devicePath + "/resource0", offset: offset, ConfigSpaceBuilder.littleEndian(value))
        }
    }

    func probe(_ kind: ReadinessProbeKind, expected: PCIExpectation = ReadinessTree.expected)
        -> ReadinessProbe
    {
        ReadinessProbe.make(kind: kind, bdf: Self.device, root: root, expected: expected)
    }
}

/// A fresh hand-written tree for the body, deleted afterwards.
func withReadinessTree<T>(_ body: (ReadinessTree) throws -> T) throws -> T {
    let tree = try ReadinessTree()
    defer { tree.remove() }
    return try body(tree)
}

/// Time for a readiness wait that the test controls: a sleep advances the clock by exactly what was
/// asked, at once, so the polls happen at known times whatever the machine's load. Every sleep is
/// recorded.
final class VirtualReadinessClock: ReadinessClock {
    let start: ContinuousClock.Instant
    private let state = Mutex<(advanced: Duration, sleeps: [Duration])>((.zero, []))

    init(start: ContinuousClock.Instant = .now) {
        self.start = start
    }

    var now: ContinuousClock.Instant { start + state.withLock { $0.advanced } }

    /// The sleeps asked for, in order.
    var sleeps: [Duration] { state.withLock { $0.sleeps } }

    /// `milliseconds` after the clock's start.
    func deadline(inMs milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    func sleep(for duration: Duration, token: CancellationToken) -> Bool {
        if token.isCancelled { return true }
        state.withLock { state in
            state.sleeps.append(duration)
            state.advanced += max(duration, .zero)
        }
        return token.isCancelled
    }
}

/// The monotonic clock, counting the sleeps between polls, so a test can tell that a wait has
/// polled a number of times.
final class CountingReadinessClock: ReadinessClock {
    private let count = Mutex(0)

    var now: ContinuousClock.Instant { .now }

    var sleepCount: Int { count.withLock { $0 } }

    func sleep(for duration: Duration, token: CancellationToken) -> Bool {
        count.withLock { $0 += 1 }
        return token.sleep(for: duration)
    }
}
