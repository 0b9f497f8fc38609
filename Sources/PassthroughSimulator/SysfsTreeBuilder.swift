import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// Writes a sysfs PCI tree under a root folder, laid out the way the kernel lays out `/sys`.
///
/// Device folders are real folders nested by topology, `devices/pci<DDDD>:<BB>/<port>/.../<bdf>`,
/// so the parent bridge is the folder above a device; `bus/pci/devices/<bdf>`, `driver`,
/// `iommu_group` and the drivers' and groups' device entries are relative links that resolve.
/// libpci (`-A linux-sysfs`) parses the result.
public struct SysfsTreeBuilder: Sendable {
    public let root: SysfsRoot
    public private(set) var functions: [BDF: SimulatedFunction]
    public let drivers: [String: SimulatedDriver]

    /// Checks the topology: unique BDFs, every parent is a bridge in the set, bound drivers exist.
    public init(root: SysfsRoot, functions: [SimulatedFunction], drivers: [SimulatedDriver])
        throws(KernelError)
    {
        self.root = root
        var byBDF: [BDF: SimulatedFunction] = [:]
        for function in functions {
            guard byBDF.updateValue(function, forKey: function.bdf) == nil else {
                throw KernelError(code: EEXIST, path: root.device(function.bdf))
            }
        }
        self.drivers = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for function in functions {
            if let parent = function.parent, byBDF[parent]?.isBridge != true {
                throw KernelError(code: ENOENT, path: root.device(parent))
            }
            if let driver = function.driver, self.drivers[driver] == nil {
                throw KernelError(code: ENOENT, path: "bus/pci/drivers/\(driver)")
            }
        }
        self.functions = byBDF
    }

    private var files: TreeFiles { TreeFiles(root: root) }

    /// Writes the whole tree. The root folder is created if missing.
    public func build() throws(KernelError) {
        try files.makeFolders("devices")
        try files.makeFolders("bus/pci/devices")
        try files.makeFolders("bus/pci/drivers")
        try files.makeFolders("kernel/iommu_groups")
        try files.create("bus/pci/drivers_probe", [], mode: 0o200)
        try files.create("bus/pci/rescan", [], mode: 0o200)
        try files.create("bus/pci/resource_alignment", text: "\n")
        for name in drivers.keys.sorted() { try writeDriver(name) }
        // Parents before children: a device folder lives inside its bridge's folder.
        for function in functions.values.sorted(by: { depth(of: $0) < depth(of: $1) || $0.bdf < $1.bdf }) {
            try writeFunction(function)
        }
    }

    private func writeDriver(_ name: String) throws(KernelError) {
        let folder = "bus/pci/drivers/\(name)"
        try files.makeFolders(folder)
        for attribute in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
            try files.create(folder + "/" + attribute, [], mode: 0o200)
        }
    }

    // MARK: Paths

    /// How many bridges lie between the function and its root bus.
    func depth(of function: SimulatedFunction) -> Int {
        var count = 0
        var current = function.parent
        while let bdf = current {
            count += 1
            current = functions[bdf]?.parent
        }
        return count
    }

    /// The real folder of a function, relative to the root: `devices/pci0009:00/0009:00:00.0/0009:01:00.0`.
    /// A captured function keeps the folder the real host had (`CaptureTreeBuilder` checked it).
    public func devicePath(_ bdf: BDF) -> String {
        if let realpath = functions[bdf]?.capture?.realpath {
            return String(realpath.dropFirst("/sys/".count))
        }
        var chain: [BDF] = []
        var current: BDF? = bdf
        while let next = current {
            chain.append(next)
            current = functions[next]?.parent
        }
        let top = chain.last ?? bdf
        let hostBridge = "pci" + hex(top.domain, width: 4) + ":" + hex(top.bus, width: 2)
        return (["devices", hostBridge] + chain.reversed().map(\.description)).joined(separator: "/")
    }

    public func iommuGroupPath(_ group: Int) -> String { "kernel/iommu_groups/\(group)" }

    public func driverPath(_ name: String) -> String { "bus/pci/drivers/\(name)" }

    /// A bridge's secondary bus (its children's) and subordinate bus (the highest below it).
    func busRange(of bridge: SimulatedFunction) -> (secondary: UInt8, subordinate: UInt8) {
        let children = functions.values.filter { $0.parent == bridge.bdf }
        let secondary = children.map(\.bdf.bus).min() ?? bridge.bdf.bus &+ 1
        var subordinate = secondary
        var pending = children
        while let next = pending.popLast() {
            subordinate = max(subordinate, next.bdf.bus)
            if next.isBridge {
                subordinate = max(subordinate, busRange(of: next).subordinate)
            }
        }
        return (secondary, subordinate)
    }

    /// Whether another function shares the function's device number (a multi-function device).
    func isMultiFunction(_ function: SimulatedFunction) -> Bool {
        functions.values.contains { other in
            other.bdf != function.bdf && other.bdf.domain == function.bdf.domain
                && other.bdf.bus == function.bdf.bus && other.bdf.device == function.bdf.device
        }
    }

    public func configSpace(for function: SimulatedFunction) -> ConfigSpaceBuilder {
        if let capture = function.capture { return ConfigSpaceBuilder(captured: capture.config) }
        let range = function.isBridge ? busRange(of: function) : (secondary: 0, subordinate: 0)
        return ConfigSpaceBuilder.configSpace(
            for: function, secondaryBus: range.secondary, subordinateBus: range.subordinate,
            multiFunction: isMultiFunction(function))
    }

    // MARK: One function

    /// Writes a function's folder, attributes and links (bus entry, driver both ways, IOMMU group both
    /// ways). The parent's folder must exist. Used at build time and by the kernel on rescan.
    func writeFunction(_ function: SimulatedFunction) throws(KernelError) {
        let folder = devicePath(function.bdf)
        try files.makeFolders(folder + "/power")
        if let capture = function.capture {
            try writeCaptured(capture, of: function)
        } else {
            try writeGenerated(function)
        }
        // What the kernel's writes change comes from the function's state, captured or not: after a
        // rescan the override is gone whatever the capture said.
        try files.create(folder + "/driver_override", text: (function.driverOverride ?? "(null)") + "\n")
        try files.create(folder + "/power/control", text: function.powerControl + "\n")
        try files.create(folder + "/remove", [], mode: 0o200)
        try files.create(folder + "/rescan", [], mode: 0o200)
        // The kernel shows an empty list as an empty file, and creates `reset` only when a method
        // existed at enumeration.
        let methods = function.resetMethods.joined(separator: " ")
        try files.create(folder + "/reset_method", text: methods.isEmpty ? "" : methods + "\n")
        if !function.resetMethods.isEmpty { try files.create(folder + "/reset", [], mode: 0o200) }
        if function.readiness == .nvgraceBAR0 && root.exists(folder + "/resource0") {
            try setNvgraceWords(function.bdf, Self.nvgraceReadyValue)
        }
        try files.link("bus/pci/devices/\(function.bdf)", to: folder)
        if let driver = function.driver { try linkDriver(driver, to: function.bdf) }
        if let group = function.iommuGroup {
            try files.makeFolders(iommuGroupPath(group) + "/devices")
            if !root.exists(iommuGroupPath(group) + "/type") {
                try files.create(iommuGroupPath(group) + "/type", text: "DMA\n")
                try files.create(iommuGroupPath(group) + "/reserved_regions", [], mode: 0o444)
            }
            try files.link(folder + "/iommu_group", to: iommuGroupPath(group))
            try files.link(iommuGroupPath(group) + "/devices/\(function.bdf)", to: folder)
        }
    }

    /// The attributes, `resource`, config space and BAR0 file of a function made up for the demo.
    private func writeGenerated(_ function: SimulatedFunction) throws(KernelError) {
        let folder = devicePath(function.bdf)
        let text: [(String, String)] = [
            ("vendor", "0x" + hex(function.vendor, width: 4)),
            ("device", "0x" + hex(function.device, width: 4)),
            ("subsystem_vendor", "0x" + hex(function.subsystemVendor, width: 4)),
            ("subsystem_device", "0x" + hex(function.subsystemDevice, width: 4)),
            ("class", "0x" + hex(function.classCode, width: 6)),
            ("revision", "0x" + hex(function.revision, width: 2)),
            ("irq", String(function.irq)),
            ("numa_node", String(function.numaNode)),
            ("local_cpulist", "0-71"),
            ("enable", "1"),
            ("current_link_speed", SimulatedFunction.Link.speedString(function.link.currentGeneration)),
            ("max_link_speed", SimulatedFunction.Link.speedString(function.link.maxGeneration)),
            ("current_link_width", String(function.link.currentWidth)),
            ("max_link_width", String(function.link.maxWidth)),
            ("power_state", "D0"),
            ("power/runtime_status", "active"),
            ("modalias", modalias(function)),
        ]
        for (name, value) in text { try files.create(folder + "/" + name, text: value + "\n") }
        try files.create(folder + "/resource", text: resourceText(function), mode: 0o444)
        try files.create(folder + "/config", configSpace(for: function).bytes)
        if let bar0 = function.bars.first(where: { $0.index == 0 }) {
            try files.createSparse(folder + "/resource0", size: bar0.size)
        }
    }

    /// A captured function's files as the host showed them: every attribute that was read (one whose
    /// read failed is left out, see `CaptureTreeBuilder`), its config space and its memory-mapped
    /// files at their captured sizes (sparse: they take no space).
    private func writeCaptured(_ capture: CapturedFunction, of function: SimulatedFunction)
        throws(KernelError)
    {
        let folder = devicePath(function.bdf)
        for (name, attribute) in capture.attributes.sorted(by: { $0.key < $1.key }) {
            guard let text = attribute.text else { continue }
            if let slash = name.lastIndex(of: "/") { try files.makeFolders(folder + "/" + name[..<slash]) }
            try files.create(folder + "/" + name, text: text, mode: name == "resource" ? 0o444 : 0o644)
        }
        try files.create(folder + "/config", capture.config)
        for (name, size) in capture.files.sorted(by: { $0.key < $1.key }) {
            try files.createSparse(folder + "/" + name, size: size)
        }
    }

    /// Removes a function's folder (and anything below it) and every link that names it.
    func removeFunction(_ bdf: BDF) throws(KernelError) {
        guard let function = functions[bdf] else { return }
        for child in functions.values where child.parent == bdf { try removeFunction(child.bdf) }
        if let driver = root.linkName(root.device(bdf) + "/driver") {
            files.remove(driverPath(driver) + "/\(bdf)")
        }
        if let group = function.iommuGroup {
            files.remove(iommuGroupPath(group) + "/devices/\(bdf)")
            // The kernel frees a group with its last device.
            if root.list(iommuGroupPath(group) + "/devices").isEmpty {
                try files.removeTree(iommuGroupPath(group))
            }
        }
        files.remove("bus/pci/devices/\(bdf)")
        try files.removeTree(devicePath(bdf))
    }

    /// The `driver` link of the device and the driver's link back to it.
    func linkDriver(_ driver: String, to bdf: BDF) throws(KernelError) {
        try files.link(devicePath(bdf) + "/driver", to: driverPath(driver))
        try files.link(driverPath(driver) + "/\(bdf)", to: devicePath(bdf))
    }

    func unlinkDriver(_ driver: String, from bdf: BDF) {
        files.remove(devicePath(bdf) + "/driver")
        files.remove(driverPath(driver) + "/\(bdf)")
    }

    // MARK: Registers the kernel changes

    /// nvgrace-gpu's readiness registers in BAR0: C2C link status at 0x1498 and HBM training at
    /// 0x200BC; both read 0xFF when the GPU is ready.
    public static let nvgraceReadyOffsets = [0x1498, 0x200BC]
    public static let nvgraceReadyValue: UInt32 = 0xFF

    /// Writes both words; the simulated kernel decides the value (ready, in reset, or all-ones in D3hot).
    func setNvgraceWords(_ bdf: BDF, _ value: UInt32) throws(KernelError) {
        for offset in Self.nvgraceReadyOffsets {
            try files.patch(
                devicePath(bdf) + "/resource0", offset: offset, ConfigSpaceBuilder.littleEndian(value))
        }
    }

    // MARK: Formats

    /// `resource`: one line per resource (13 for an endpoint, 17 for a bridge), `start end flags`,
    /// flags being IORESOURCE_MEM | SIZEALIGN, MEM_64 and PREFETCH plus the BAR's low type bits.
    func resourceText(_ function: SimulatedFunction) -> String {
        let lines = function.isBridge ? 17 : 13
        var text = ""
        for index in 0..<lines {
            var start: UInt64 = 0
            var end: UInt64 = 0
            var flags: UInt64 = 0
            if let bar = function.bars.first(where: { $0.index == index }), bar.size > 0 {
                start = bar.start
                end = bar.start + bar.size - 1
                flags = 0x200 | 0x40000
                if bar.is64Bit { flags |= 0x100000 | 0x4 }
                if bar.prefetchable { flags |= 0x2000 | 0x8 }
            }
            text += "0x\(hex(start, width: 16)) 0x\(hex(end, width: 16)) 0x\(hex(flags, width: 16))\n"
        }
        return text
    }

    func modalias(_ function: SimulatedFunction) -> String {
        func upper(_ value: some BinaryInteger, _ width: Int) -> String {
            hex(value, width: width).uppercased()
        }
        return "pci:v0000\(upper(function.vendor, 4))d0000\(upper(function.device, 4))"
            + "sv0000\(upper(function.subsystemVendor, 4))sd0000\(upper(function.subsystemDevice, 4))"
            + "bc\(upper(function.classCode >> 16, 2))sc\(upper(function.classCode >> 8 & 0xff, 2))"
            + "i\(upper(function.classCode & 0xff, 2))"
    }
}
