/// The generic readiness check every device gets: it answers config reads, with the IDs it had,
/// and its link is trained at the speed and width it had.
///
/// Right after a reset a function legitimately reads all-ones (or the CRS value) for a while; the
/// kernel itself keeps polling for up to a minute. So all-ones is "not ready" here, and only a
/// device whose sysfs folder or config file disappeared is "gone": the deadline is what turns a
/// device that never answers into a failure.
import Synchronization

public struct PCIConfigCheck: Sendable {
    /// The vendor ID a root port synthesises for a Configuration Request Retry Status completion
    /// when CRS Software Visibility is on: "ask again later".
    public static let crsVendorID: UInt16 = 0x0001
    /// The header and the standard capabilities, read once to find the PCI Express capability
    /// (which holds Link Status). After that a poll reads only the registers it checks.
    static let configReadLength = ConfigSpace.conventionalSize
    /// Vendor and device ID, then Command and Status: the dwords at 0x00 and 0x04.
    static let headerReadLength = 8

    public let bdf: BDF
    public let root: SysfsRoot
    public let expected: PCIExpectation
    /// Where Link Status sits, once a poll has found it: the kernel reads config space a dword at a
    /// time (and in a guest each dword traps to the hypervisor), so a poll that reads 256 bytes costs
    /// 64 reads where three do (see reference perf-facts: 1.3-1.8 ms against 20-36 µs per poll).
    private let located = LinkStatusLocation()

    public init(bdf: BDF, root: SysfsRoot, expected: PCIExpectation) {
        self.bdf = bdf
        self.root = root
        self.expected = expected
    }

    /// The offset of Link Status, shared by the copies of one check (the probe keeps it in an enum).
    final class LinkStatusLocation: Sendable {
        /// -1: not found yet; 0: the function has no PCI Express capability; else the offset.
        let offset = Atomic<Int>(-1)
    }

    /// The registers one poll read: the first two dwords, and Link Status when the function has it.
    struct PolledRegisters {
        /// The header's first 8 bytes (IDs, Command, Status), with ConfigSpace's readers.
        let header: ConfigSpace
        let linkStatus: PCIeLinkStatus?
    }

    /// The registers, or the observation that ends this poll before any field is looked at.
    enum ConfigRead {
        case config(PolledRegisters)
        case verdict(ProbeObservation)
    }

    /// The whole check.
    public func observe() -> ProbeObservation {
        switch readConfig() {
        case .verdict(let observation): observation
        case .config(let config): identity(config) ?? link(config) ?? .ready
        }
    }

    /// Reads `config` and turns the reads that say nothing about fields (gone, all-ones, CRS, short)
    /// into a verdict. The first poll that gets an answer reads 256 bytes to find Link Status; the
    /// others read 8 bytes at 0 and 2 at Link Status.
    func readConfig() -> ConfigRead {
        let linkStatusOffset = located.offset.load(ordering: .relaxed)
        var ranges = [
            (offset: 0, count: linkStatusOffset < 0 ? Self.configReadLength : Self.headerReadLength)
        ]
        if linkStatusOffset > 0 { ranges.append((linkStatusOffset, 2)) }
        let reads: [[UInt8]]
        switch readHeader(ranges) {
        case .verdict(let observation): return .verdict(observation)
        case .read(let read): reads = read
        }
        let config = ConfigSpace(reads[0])
        if linkStatusOffset < 0 {
            // Found only on an answering function (all-ones and CRS were refused above).
            let found = config.pciExpressCapability.map { $0.offset + 0x12 } ?? 0
            located.offset.store(found, ordering: .relaxed)
            return .config(PolledRegisters(header: config, linkStatus: config.linkStatus))
        }
        let linkStatus = reads.count > 1 ? ConfigSpace(reads[1]).read16(at: 0).map(PCIeLinkStatus.init) : nil
        return .config(PolledRegisters(header: config, linkStatus: linkStatus))
    }

    private enum HeaderRead {
        case read([[UInt8]])
        case verdict(ProbeObservation)
    }

    /// The ranges of `config` through one descriptor, the first being the header.
    private func readHeader(_ ranges: [(offset: Int, count: Int)]) -> HeaderRead {
        let folder = root.device(bdf)
        guard root.exists(folder) else { return .verdict(.gone("device folder \(folder) is gone")) }
        let reads: [[UInt8]]
        do {
            reads = try root.readRegisters(folder + "/config", ranges)
        } catch {
            if error.errno == .noSuchFileOrDirectory || error.errno == .operationNotSupportedByDevice {
                return .verdict(.gone("config unreadable: \(error.name)"))
            }
            return .verdict(.notReady("config read failed: \(error.name) (\(error.message))"))
        }
        let config = ConfigSpace(reads[0])
        guard config.count >= 4 else {
            return .verdict(.notReady("config read returned \(config.count) bytes"))
        }
        if config.isAllOnes {
            let power = PowerState.read(bdf: bdf, root: root)
            let state = power.state.map { " (power_state \($0))" } ?? ""
            return .verdict(.notReady("config space reads all-ones" + state))
        }
        if config.vendorID == Self.crsVendorID {
            return .verdict(.notReady("CRS: vendor ID reads 0x0001 (configuration request retry)"))
        }
        return .read(reads)
    }

    /// Nil when the IDs match the expectation.
    func identity(_ registers: PolledRegisters) -> ProbeObservation? {
        guard let vendor = registers.header.vendorID, let device = registers.header.deviceID else {
            return .notReady("config read too short for the IDs")
        }
        guard vendor == expected.vendorID && device == expected.deviceID else {
            return .notReady(
                "IDs read \(hex(vendor, width: 4)):\(hex(device, width: 4)), expected \(expected.idText)")
        }
        return nil
    }

    /// Nil when the link is settled and as recorded.
    func link(_ registers: PolledRegisters) -> ProbeObservation? {
        if let status = registers.linkStatus, status.linkTraining {
            return .notReady("link is training (Link Status 0x\(hex(status.raw, width: 4)))")
        }
        // The current speed and width come from Link Status, which the poll has just read (the
        // kernel's `current_link_speed` and `current_link_width` show the same register, at the cost
        // of two more file reads a poll). A function without a PCI Express capability has neither
        // the register nor the files; one whose register could not be read falls back to the files.
        // Each is compared only when the expectation has it: old records may lack a field.
        var mismatch = false
        var speedText = "unknown speed"
        var widthText = "x?"
        var speed: (value: Double?, shown: Bool) = (nil, false)
        var width: (value: Int?, shown: Bool) = (nil, false)
        if let status = registers.linkStatus {
            speed = (LinkSpeed.gigatransfersPerSecond(code: status.currentSpeedCode), true)
            width = (status.width, true)
        } else if located.offset.load(ordering: .relaxed) != 0 {
            let folder = root.device(bdf)
            if let speedFile = root.readOptionalString(folder + "/current_link_speed") {
                speed = (LinkSpeed.parse(speedFile), true)
            }
            if let widthFile = root.readOptionalString(folder + "/current_link_width") {
                width = (LinkSpeed.parseWidth(widthFile), true)
            }
        }
        if speed.shown {
            speedText = speed.value.map { Self.format(speed: $0) } ?? "unknown speed"
            if let want = expected.linkSpeed, speed.value.map({ abs($0 - want) > 0.01 }) ?? true {
                mismatch = true
            }
        }
        if width.shown {
            widthText = width.value.map { "x\($0)" } ?? "x?"
            if let want = expected.linkWidth, width.value != want { mismatch = true }
        }
        guard mismatch else { return nil }
        let wantSpeed = expected.linkSpeed.map { Self.format(speed: $0) } ?? "any speed"
        let wantWidth = expected.linkWidth.map { "x\($0)" } ?? "any width"
        return .notReady("link at \(speedText) \(widthText), expected \(wantSpeed) \(wantWidth)")
    }

    /// "32 GT/s", "2.5 GT/s".
    static func format(speed: Double) -> String {
        let rounded = (speed * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return text + " GT/s"
    }
}
