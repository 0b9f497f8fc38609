import FoundationEssentials

/// One PCI function of a captured host: what its sysfs folder showed.
public struct CapturedFunction: Hashable, Sendable, Codable {
    /// The function's real folder, `/sys/devices/pci0000:00/0000:00:06.0`: its parent bridges are the
    /// folders above it.
    public var realpath: String
    /// Readable attributes by name relative to the function's folder (`vendor`, `power/control`).
    /// Serial numbers (`serial_number`, `vpd`) are never recorded.
    public var attributes: [String: CapturedAttribute]
    /// Symbolic links in the folder and their targets as stored (relative); nil for a link that the
    /// format always names (`driver`, `iommu_group`) and that was absent.
    public var links: [String: String?]
    /// The `config` file as root reads it (4096 bytes for PCI Express), with the Device Serial
    /// Number's data bytes zeroed.
    public var config: [UInt8]
    /// How many bytes the `config` read returned (the length of `config`).
    public var configLength: Int?
    /// Sizes in bytes of the files that only map memory (`resource2`, `resource2_wc`, `rom`).
    public var files: [String: UInt64]
    /// The folder's listing, for the record: everything the kernel showed, read or not.
    public var entries: [String]

    public init(
        realpath: String, attributes: [String: CapturedAttribute], links: [String: String?], config: [UInt8],
        files: [String: UInt64], entries: [String]
    ) {
        self.realpath = realpath
        self.attributes = attributes
        self.links = links
        self.config = config
        self.configLength = config.count
        self.files = files
        self.entries = entries
    }

    /// The text of an attribute that was read; nil when it is absent or its read failed.
    public func text(_ name: String) -> String? {
        attributes[name]?.text
    }

    /// The last component of a link's target: `driver` -> `nvidia`, `iommu_group` -> `12`.
    public func linkName(_ name: String) -> String? {
        guard case .some(.some(let target)) = links[name] else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    private enum CodingKeys: String, CodingKey {
        case realpath, attributes = "attrs", links, config = "config_b64", configLength = "config_len"
        case files, entries
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        realpath = try container.decode(String.self, forKey: .realpath)
        attributes =
            try container.decodeIfPresent([String: CapturedAttribute].self, forKey: .attributes) ?? [:]
        links = try container.decodeIfPresent([String: String?].self, forKey: .links) ?? [:]
        let encoded = try container.decodeIfPresent(String.self, forKey: .config) ?? ""
        guard let bytes = Data(base64Encoded: encoded) else {
            throw DecodingError.dataCorruptedError(
                forKey: .config, in: container, debugDescription: "config_b64 is not base64")
        }
        config = Array(bytes)
        configLength = try container.decodeIfPresent(Int.self, forKey: .configLength)
        files = try container.decodeIfPresent([String: UInt64].self, forKey: .files) ?? [:]
        entries = try container.decodeIfPresent([String].self, forKey: .entries) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(realpath, forKey: .realpath)
        try container.encode(attributes, forKey: .attributes)
        try container.encode(links, forKey: .links)
        try container.encode(Data(config).base64EncodedString(), forKey: .config)
        try container.encode(configLength ?? config.count, forKey: .configLength)
        try container.encode(files, forKey: .files)
        try container.encode(entries, forKey: .entries)
    }
}
