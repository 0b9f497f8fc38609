import Passthrough

/// Lays out a captured host as a sysfs tree the simulated kernel can act on.
///
/// Each captured function becomes a `SimulatedFunction` that carries its capture, so the tree holds
/// what the real host showed (attributes, `resource`, 4096 bytes of config space, `resourceN` files
/// at their real sizes, sparse) in the folder the host had, while the identity, driver, override,
/// reset methods and IOMMU group the kernel's writes work on are read out of the same capture. The
/// simulated kernel therefore binds, unbinds, resets and rescans captured devices exactly as it does
/// the demo host's.
///
/// What the tree does not hold, and why:
/// - Attributes whose read failed (`{"errno": 5}`): a plain file cannot fail a read, and every reader
///   of optional attributes (GraceAPI's `readOptionalString`, libpci) treats a failed read and a
///   missing file alike, so the attribute is left out rather than faked with other content.
/// - Links other than `driver` and `iommu_group` (`firmware_node`, `subsystem`, ...): their targets
///   lie outside the captured PCI view, and nothing GraceAPI or libpci reads follows them.
/// - Entries that were only listed (`msi_irqs/`, `uevent`, ...): the capture keeps the listing.
///
/// Captures come from bug reports, so every name that becomes a path is checked: a function's
/// folder must lie under `/sys/devices` and end in its own address, attribute and file names must
/// stay inside the function's folder, and driver names must be plain names.
public struct CaptureTreeBuilder: Sendable {
    public let capture: HostCapture
    public let functions: [SimulatedFunction]
    /// The captured drivers, plus the VFIO drivers a passthrough host loads on demand (vfio-pci and
    /// nvgrace_gpu_vfio_pci), so a captured GPU can be bound to VFIO.
    public let drivers: [SimulatedDriver]
    public let firmwareMemory: [BDF: FirmwareMemory]

    public init(_ capture: HostCapture) throws(HostCaptureError) {
        self.capture = capture
        var groups: [BDF: Int] = [:]
        for (group, members) in capture.iommuGroups {
            guard let number = Int(group), number >= 0 else {
                throw .invalid("IOMMU group \(group) is not a number")
            }
            for member in members { if let bdf = BDF(member) { groups[bdf] = number } }
        }
        var addresses: [String: BDF] = [:]
        for key in capture.devices.keys {
            guard let bdf = BDF(key) else { throw .invalid("\(key) is not a PCI address DDDD:BB:DD.F") }
            addresses[key] = bdf
        }
        let present = Set(addresses.values)
        var functions: [SimulatedFunction] = []
        var folders: Set<String> = []
        for (key, captured) in capture.devices.sorted(by: { $0.key < $1.key }) {
            let function = try Self.function(addresses[key]!, captured, present: present, groups: groups)
            guard folders.insert(captured.realpath).inserted else {
                throw .invalid("two functions share the folder \(captured.realpath)")
            }
            functions.append(function)
        }
        // A parent's folder must be the folder above its child's, as in sysfs: each step up a
        // chain of parents is then a shorter path, so no chain can loop (two bridges that each name
        // the other's address as their folder's parent would send every walk up the tree round
        // for ever).
        let folderOf = Dictionary(
            functions.compactMap { function in function.capture.map { (function.bdf, $0.realpath) } },
            uniquingKeysWith: { first, _ in first })
        for function in functions {
            guard let parent = function.parent, let folder = function.capture?.realpath else { continue }
            let above = folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)]
            guard folderOf[parent].map({ $0 == above }) ?? false else {
                throw .invalid(
                    "\(function.bdf): its parent \(parent) is captured in \(folderOf[parent] ?? "no folder"), "
                        + "not in the folder above \(folder)")
            }
        }
        self.functions = functions

        var drivers: [SimulatedDriver] = []
        let names = Set(capture.drivers.keys).union(functions.compactMap(\.driver))
        for name in names.sorted() {
            guard Self.isPlainName(name) else { throw .invalid("driver name \(name.debugDescription)") }
            drivers.append(Self.driver(name, bound: functions.filter { $0.driver == name }))
        }
        for vfio in SimulatedHost.demoDrivers
        where RuntimePower.isVFIODriver(vfio.name) && !names.contains(vfio.name) {
            drivers.append(vfio)
        }
        self.drivers = drivers

        var memory: [BDF: FirmwareMemory] = [:]
        for (key, entry) in capture.firmwareMemory ?? [:] {
            guard let bdf = BDF(key) else { throw .invalid("firmware memory for \(key), not a PCI address") }
            memory[bdf] = FirmwareMemory(physicalBase: entry.physicalBase, length: entry.length)
        }
        firmwareMemory = memory
    }

    /// Writes the tree under `root` (which should be empty) and returns the builder the simulated
    /// kernel works through.
    public func build(at root: SysfsRoot) throws(HostCaptureError) -> SysfsTreeBuilder {
        let tree: SysfsTreeBuilder
        do {
            tree = try SysfsTreeBuilder(root: root, functions: functions, drivers: drivers)
        } catch {
            throw .invalid("the topology does not hold together at \(error.path)")
        }
        do {
            try tree.build()
            // Loaded modules show as folders under /sys/module.
            for module in capture.modules ?? [] where Self.isPlainName(module) {
                try TreeFiles(root: root).makeFolders("module/" + module)
            }
        } catch {
            throw .kernel(error)
        }
        return tree
    }

    // MARK: One function

    private static func function(
        _ bdf: BDF, _ captured: CapturedFunction, present: Set<BDF>, groups: [BDF: Int]
    ) throws(HostCaptureError) -> SimulatedFunction {
        func invalid(_ detail: String) -> HostCaptureError { .invalid("\(bdf): \(detail)") }

        let prefix = "/sys/devices/"
        let components = captured.realpath.dropFirst(prefix.count).split(
            separator: "/", omittingEmptySubsequences: false)
        guard captured.realpath.hasPrefix(prefix), components.allSatisfy(isPlainName),
            components.last.flatMap({ BDF($0) }) == bdf
        else {
            throw invalid("realpath \(captured.realpath) is not a folder under /sys/devices named after it")
        }
        let parent = components.dropLast().last.flatMap { BDF($0) }.flatMap {
            present.contains($0) ? $0 : nil
        }

        for name in captured.attributes.keys {
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), parts.allSatisfy(isPlainName) else {
                throw invalid("attribute name \(name.debugDescription)")
            }
        }
        for name in captured.files.keys where !isPlainName(name) {
            throw invalid("file name \(name.debugDescription)")
        }

        // libpci gives up on the whole bus when one of these is missing.
        func number(_ name: String) throws(HostCaptureError) -> UInt32 {
            guard let text = captured.text(name), let value = hexNumber(text) else {
                throw invalid("no readable \(name) attribute")
            }
            return value
        }
        let vendor = try number("vendor")
        let device = try number("device")
        let classCode = try number("class")
        guard let resource = captured.text("resource") else {
            throw invalid("no readable resource attribute")
        }
        let bars: [BAR]
        do {
            bars = try ResourceFile.bars(resource)
        } catch {
            throw invalid(error.description)
        }
        let driver = captured.linkName("driver")
        if let driver, !isPlainName(driver) { throw invalid("driver link to \(driver.debugDescription)") }
        let override = captured.text("driver_override").map { String(sysfsFields($0).first ?? "") }
        let control = captured.text("power/control").map { String(sysfsFields($0).first ?? "") }

        return SimulatedFunction(
            bdf: bdf, parent: parent, vendor: UInt16(truncatingIfNeeded: vendor),
            device: UInt16(truncatingIfNeeded: device),
            subsystemVendor: UInt16(
                truncatingIfNeeded: captured.text("subsystem_vendor").flatMap(hexNumber) ?? 0),
            subsystemDevice: UInt16(
                truncatingIfNeeded: captured.text("subsystem_device").flatMap(hexNumber) ?? 0),
            classCode: classCode & 0xFF_FFFF,
            revision: UInt8(truncatingIfNeeded: captured.text("revision").flatMap(hexNumber) ?? 0),
            bars: bars,
            numaNode: captured.text("numa_node").flatMap { Int(sysfsFields($0).first ?? "") } ?? -1,
            resetMethods: ResetMethods.parse(captured.text("reset_method") ?? ""),
            driver: driver, nativeDriver: driver,
            driverOverride: override == "(null)" || override?.isEmpty == true ? nil : override,
            iommuGroup: captured.linkName("iommu_group").flatMap { Int($0) } ?? groups[bdf],
            cxlRange1: cxlRange(ConfigSpace(captured.config)),
            irq: captured.text("irq").flatMap { Int(sysfsFields($0).first ?? "") } ?? 0,
            powerControl: control.flatMap { RuntimePower.controlValues.contains($0) ? $0 : nil } ?? "auto",
            capture: captured)
    }

    /// The CXL device DVSEC's Range 1 as captured, so the simulator shows readiness in it after a reset.
    private static func cxlRange(_ config: ConfigSpace) -> SimulatedFunction.CXLRange? {
        typealias CXL = ConfigSpaceBuilder.CXL
        guard let dvsec = config.findDVSEC(vendor: CXL.vendor, id: CXL.id),
            let high = config.read32(at: dvsec.offset + CXL.range1SizeHigh),
            let low = config.read32(at: dvsec.offset + CXL.range1SizeLow)
        else { return nil }
        return SimulatedFunction.CXLRange(
            size: UInt64(high) << 32 | UInt64(low & 0xF000_0000),
            timeoutCode: UInt8((low & CXL.timeoutMask) >> CXL.timeoutShift))
    }

    /// The kernel's match table is not in sysfs; what the capture shows is which devices the driver
    /// took. So a driver matches their vendor and device IDs, or their class when they share no
    /// vendor, or anything when they share neither; one that took nothing binds only by override.
    private static func driver(_ name: String, bound: [SimulatedFunction]) -> SimulatedDriver {
        guard !bound.isEmpty else { return SimulatedDriver(name: name, overrideOnly: true) }
        let vendors = Set(bound.map(\.vendor))
        if vendors.count == 1 {
            return SimulatedDriver(name: name, vendor: vendors.first, devices: Set(bound.map(\.device)))
        }
        let classes = Set(bound.map(\.classCode))
        return SimulatedDriver(name: name, classCode: classes.count == 1 ? classes.first : nil)
    }

    /// One path component that stays where it is put: not empty, not `.` or `..`, no slash or NUL.
    static func isPlainName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0)
    }

    /// `0x10de` (sysfs spelling, newline allowed) as a number.
    private static func hexNumber(_ text: String) -> UInt32? {
        HexNumber.parse(sysfsFields(text).first ?? "")
    }
}
