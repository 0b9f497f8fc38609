/// The generic readiness check every device gets: it answers config reads, with the IDs it had,
/// and its link is trained at the speed and width it had.
///
/// Right after a reset a function legitimately reads all-ones (or the CRS value) for a while; the
/// kernel itself keeps polling for up to a minute. So all-ones is "not ready" here, and only a
/// device whose sysfs folder or config file disappeared is "gone": the deadline is what turns a
/// device that never answers into a failure.
public struct PCIConfigCheck: Sendable {
    /// The vendor ID a root port synthesises for a Configuration Request Retry Status completion
    /// when CRS Software Visibility is on: "ask again later".
    public static let crsVendorID: UInt16 = 0x0001
    /// The header and the standard capabilities (the PCI Express one holds Link Status). Reading
    /// all 4 KiB would cost a config read per dword on every poll, hundreds of times a second.
    static let configReadLength = ConfigSpace.conventionalSize

    public let bdf: BDF
    public let root: SysfsRoot
    public let expected: PCIExpectation

    public init(bdf: BDF, root: SysfsRoot, expected: PCIExpectation) {
        self.bdf = bdf
        self.root = root
        self.expected = expected
    }

    /// The config space, or the observation that ends this poll before any field is looked at.
    enum ConfigRead {
        case config(ConfigSpace)
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
    /// into a verdict.
    func readConfig(length: Int = configReadLength) -> ConfigRead {
        let folder = root.device(bdf)
        guard root.exists(folder) else { return .verdict(.gone("device folder \(folder) is gone")) }
        let bytes: [UInt8]
        do {
            bytes = try root.readBytes(folder + "/config", offset: 0, count: length)
        } catch {
            if error.errno == .noSuchEntry || error.errno == .noDevice {
                return .verdict(.gone("config unreadable: \(error.name)"))
            }
            return .verdict(.notReady("config read failed: \(error.name) (\(error.message))"))
        }
        let config = ConfigSpace(bytes)
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
        return .config(config)
    }

    /// Nil when the IDs match the expectation.
    func identity(_ config: ConfigSpace) -> ProbeObservation? {
        guard let vendor = config.vendorID, let device = config.deviceID else {
            return .notReady("config read too short for the IDs")
        }
        guard vendor == expected.vendorID && device == expected.deviceID else {
            return .notReady(
                "IDs read \(hex(vendor, width: 4)):\(hex(device, width: 4)), expected \(expected.idText)")
        }
        return nil
    }

    /// Nil when the link is settled and as recorded.
    func link(_ config: ConfigSpace) -> ProbeObservation? {
        if let status = config.linkStatus, status.linkTraining {
            return .notReady("link is training (Link Status 0x\(hex(status.raw, width: 4)))")
        }
        let folder = root.device(bdf)
        // Each attribute is compared only when both the expectation and the file have it: devices
        // without a PCI Express capability have no link files, and old records may lack a field.
        var mismatch = false
        var speedText = "unknown speed"
        var widthText = "x?"
        if let speedFile = root.readOptionalString(folder + "/current_link_speed") {
            let speed = LinkSpeed.parse(speedFile)
            speedText = speed.map { Self.format(speed: $0) } ?? "unknown speed"
            if let want = expected.linkSpeed, speed.map({ abs($0 - want) > 0.01 }) ?? true { mismatch = true }
        }
        if let widthFile = root.readOptionalString(folder + "/current_link_width") {
            let width = LinkSpeed.parseWidth(widthFile)
            widthText = width.map { "x\($0)" } ?? "x?"
            if let want = expected.linkWidth, width != want { mismatch = true }
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
