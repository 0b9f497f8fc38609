import FoundationEssentials

/// A host's PCI view as `graced capture` records it: every function's attributes, links, config
/// space and resource file sizes, plus the IOMMU groups and drivers, without serial numbers.
///
/// The JSON is the test-fixture format of `Tests/Fixtures`: keys in snake_case, functions keyed by
/// BDF, config space in base64. Captures written by GraceAPI carry `format` and `version`; older
/// ones (the first fixtures) lack both and are read as version 1, whose fields they already have.
/// A reader refuses a newer version rather than replay a host it only half understands.
public struct HostCapture: Hashable, Sendable, Codable {
    public static let formatName = "graceapi-host-capture"
    public static let currentVersion = 1

    /// A GPU's firmware memory (ACPI `_DSD`), which sysfs does not show: recorded when the capturer
    /// was told it, so that a replay lays out nvgrace memory as the host does.
    public struct FirmwareMemoryEntry: Hashable, Sendable, Codable {
        public var physicalBase: UInt64
        public var length: UInt64

        private enum CodingKeys: String, CodingKey {
            case physicalBase = "physical_base", length
        }
    }

    /// As read: nil for the first captures, which predate these fields. Always written.
    public var format: String?
    public var version: Int?
    /// `uname -r` of the captured host, when the capture read the running kernel's /sys.
    public var kernelRelease: String?
    /// Functions by BDF (`0000:00:06.0`).
    public var devices: [String: CapturedFunction]
    /// IOMMU groups by number, each with its members' BDFs; empty without an IOMMU.
    public var iommuGroups: [String: [String]]
    /// Every PCI driver registered on the host with the BDFs bound to it.
    public var drivers: [String: [String]]
    /// Loaded kernel modules that matter to passthrough (nvidia, vfio, nvgrace, ...).
    public var modules: [String]?
    /// The `/dev/vfio` nodes, when the capturer could see them; null otherwise.
    public var devVFIO: [String]?
    public var firmwareMemory: [String: FirmwareMemoryEntry]?

    public init(
        kernelRelease: String?, devices: [String: CapturedFunction], iommuGroups: [String: [String]],
        drivers: [String: [String]], modules: [String]?, firmwareMemory: [BDF: FirmwareMemory] = [:]
    ) {
        format = Self.formatName
        version = Self.currentVersion
        self.kernelRelease = kernelRelease
        self.devices = devices
        self.iommuGroups = iommuGroups
        self.drivers = drivers
        self.modules = modules
        devVFIO = nil
        self.firmwareMemory =
            firmwareMemory.isEmpty
            ? nil
            : Dictionary(
                uniqueKeysWithValues: firmwareMemory.map {
                    (
                        $0.key.description,
                        FirmwareMemoryEntry(physicalBase: $0.value.physicalBase, length: $0.value.length)
                    )
                })
    }

    private enum CodingKeys: String, CodingKey {
        case format, version, kernelRelease = "kernel_release", devices, iommuGroups = "iommu_groups"
        case drivers, modules, devVFIO = "dev_vfio", firmwareMemory = "firmware_memory"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        format = try container.decodeIfPresent(String.self, forKey: .format)
        version = try container.decodeIfPresent(Int.self, forKey: .version)
        kernelRelease = try container.decodeIfPresent(String.self, forKey: .kernelRelease)
        devices = try container.decode([String: CapturedFunction].self, forKey: .devices)
        iommuGroups = try container.decodeIfPresent([String: [String]].self, forKey: .iommuGroups) ?? [:]
        drivers = try container.decodeIfPresent([String: [String]].self, forKey: .drivers) ?? [:]
        modules = try container.decodeIfPresent([String].self, forKey: .modules)
        devVFIO = try container.decodeIfPresent([String].self, forKey: .devVFIO)
        firmwareMemory = try container.decodeIfPresent(
            [String: FirmwareMemoryEntry].self, forKey: .firmwareMemory)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // Whatever a capture was read as, it is written in this format (every field is understood).
        try container.encode(Self.formatName, forKey: .format)
        try container.encode(Self.currentVersion, forKey: .version)
        try container.encode(kernelRelease, forKey: .kernelRelease)
        try container.encode(devices, forKey: .devices)
        try container.encode(iommuGroups, forKey: .iommuGroups)
        try container.encode(drivers, forKey: .drivers)
        try container.encode(modules, forKey: .modules)
        try container.encode(devVFIO, forKey: .devVFIO)
        try container.encodeIfPresent(firmwareMemory, forKey: .firmwareMemory)
    }

    // MARK: Bytes

    /// Reads a capture, refusing formats and versions this code does not know.
    public static func decode(_ bytes: [UInt8]) throws(HostCaptureError) -> HostCapture {
        let capture: HostCapture
        do {
            capture = try JSONDecoder().decode(HostCapture.self, from: Data(bytes))
        } catch {
            throw .malformed(String(describing: error))
        }
        if let format = capture.format, format != formatName {
            throw .unsupported(format: format, version: capture.version)
        }
        if let version = capture.version, !(1...currentVersion).contains(version) {
            throw .unsupported(format: capture.format, version: version)
        }
        return capture
    }

    /// Pretty JSON with sorted keys (stable, diffable), ending in a newline.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Every member is a string, number, array or object of those: encoding cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// The firmware memory entries by BDF (entries whose key is not a BDF are left out).
    public var firmwareMemoryTable: [BDF: FirmwareMemory] {
        var table: [BDF: FirmwareMemory] = [:]
        for (key, entry) in firmwareMemory ?? [:] {
            if let bdf = BDF(key) {
                table[bdf] = FirmwareMemory(physicalBase: entry.physicalBase, length: entry.length)
            }
        }
        return table
    }
}
