/// The `alias <pattern> <module>` lines of `/lib/modules/$(uname -r)/modules.alias`, as kmod writes
/// them from every module's device table.
///
/// GraceAPI uses it to discover a device's VFIO variant driver (nvgrace-gpu ships as
/// `nvgrace_gpu_vfio_pci` upstream and under other names on vendor kernels), instead of hard-coding a
/// name: variant drivers declare `vfio_pci:` aliases for exactly the devices they handle.
public struct ModulesAlias: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var pattern: GlobPattern
        public var module: String

        public init(pattern: String, module: String) {
            self.pattern = GlobPattern(pattern)
            self.module = module
        }
    }

    public var entries: [Entry]

    /// The prefix of aliases from `PCI_DRIVER_OVERRIDE_DEVICE_VFIO` ID table entries.
    public static let vfioPrefix = "vfio_pci:"

    /// Parses the file's text. Comments, blank lines and anything not of the form
    /// `alias <pattern> <module>` are ignored: the file is generated, but one bad line should not hide
    /// the rest.
    public init(text: some StringProtocol) {
        var entries: [Entry] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 3, fields[0] == "alias" else { continue }
            entries.append(Entry(pattern: String(fields[1]), module: String(fields[2])))
        }
        self.entries = entries
    }

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads and parses the file; nil when it cannot be read (no modules installed for this kernel).
    public static func load(path: String) -> ModulesAlias? {
        // SysfsRoot is the one file reader of the module: a root folder and a name inside it.
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let bytes = try? SysfsRoot(path: folder).readBytes(name, limit: 64 << 20) else { return nil }
        return ModulesAlias(text: String(decoding: bytes, as: UTF8.self))
    }

    /// The modules with an alias matching `modalias`, most specific pattern first (fewest wildcards,
    /// then most literal characters, then by name so the order is stable). Each module appears once,
    /// at the rank of its most specific matching pattern. Only patterns starting with `prefix` count.
    public func modules(matching modalias: String, prefix: String = "") -> [String] {
        var best: [String: (wildcards: Int, literals: Int)] = [:]
        for entry in entries where entry.pattern.text.hasPrefix(prefix) && entry.pattern.matches(modalias) {
            let rank = (wildcards: entry.pattern.wildcardCount, literals: entry.pattern.literalCount)
            if let known = best[entry.module],
                (known.wildcards, -known.literals) <= (rank.wildcards, -rank.literals)
            {
                continue
            }
            best[entry.module] = rank
        }
        return best.sorted { lhs, rhs in
            (lhs.value.wildcards, -lhs.value.literals, lhs.key) < (
                rhs.value.wildcards, -rhs.value.literals, rhs.key
            )
        }.map(\.key)
    }

    /// The sysfs driver name of the VFIO variant driver for a device, or nil if only plain vfio-pci
    /// (whose table matches every device) or nothing claims it.
    ///
    /// Module names use underscores where the `.ko` file has dashes; `pci_driver.name` is
    /// `KBUILD_MODNAME`, so the folder under `bus/pci/drivers` is the module name with underscores.
    public func variantDriver(for identity: PCIIdentity) -> String? {
        let modalias = identity.vfioModalias
        return modules(matching: modalias, prefix: Self.vfioPrefix)
            .map { String($0.map { $0 == "-" ? "_" : $0 }) }
            // vfio-pci's own catch-all alias is not a variant; its driver is spelt `vfio-pci` anyway.
            .first { $0 != "vfio_pci" }
    }

    public func variantDriver(for function: PCIFunction) -> String? {
        variantDriver(for: PCIIdentity(function))
    }
}
