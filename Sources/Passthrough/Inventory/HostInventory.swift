/// Reads the managed devices of a host through the seam: libpci for enumeration and names, plain
/// sysfs reads for everything else.
public struct HostInventory: Sendable {
    public var root: SysfsRoot
    public var selection: DeviceSelection
    public var firmwareMemory: FirmwareMemoryTable
    /// The pci.ids file libpci reads; nil for `PCIScanner.defaultIDsPath`.
    public var idsPath: String?

    public init(
        root: SysfsRoot, selection: DeviceSelection = .displayClass,
        firmwareMemory: FirmwareMemoryTable = .empty, idsPath: String? = nil
    ) {
        self.root = root
        self.selection = selection
        self.firmwareMemory = firmwareMemory
        self.idsPath = idsPath
    }

    /// Every managed device, in BDF order. Blocks on file I/O: run it off the cooperative pool.
    public func scan() throws(PCIScanError) -> [GPUDevice] {
        describe(try managedFunctions())
    }

    /// Describes several functions in one pass: an IOMMU group's folder is listed once and each
    /// function's `driver` link read once, however many of the functions share the group.
    public func describe(_ functions: [PCIFunction]) -> [GPUDevice] {
        var reads = SharedReads()
        return root.withFolder("bus/pci/devices") { devices in
            functions.map { function in
                describe(
                    function, in: devices.folder(function.bdf.description), devices: devices, sharing: &reads)
            }
        }
    }

    /// The managed functions as libpci enumerates them (identity and names), without the rest.
    public func managedFunctions() throws(PCIScanError) -> [PCIFunction] {
        try PCIScanner.scan(root, idsPath: idsPath).filter(selection.includes)
    }

    /// Whether the function is still on the bus.
    public func isPresent(_ bdf: BDF) -> Bool {
        root.exists(root.device(bdf) + "/config")
    }

    /// Whether a function the last scan did not list could be one to manage: its address is named,
    /// or its class (from the first 12 bytes of config space) is a managed one. Unreadable: true, so
    /// that the caller rescans rather than misses it.
    public func mightManage(_ bdf: BDF) -> Bool {
        if selection.addresses.contains(bdf) { return true }
        guard let header = headerIdentity(bdf) else { return true }
        return selection.classPrefixes.contains { $0.matches(header.classCode) }
    }

    /// Whether the function at this address is still the one libpci described (vendor, device and
    /// class unchanged), so it can be described again without a libpci scan.
    public func hasIdentity(_ function: PCIFunction) -> Bool {
        guard let header = headerIdentity(function.bdf) else { return false }
        return header.vendor == function.vendorID && header.device == function.deviceID
            && header.classCode == function.classCode
    }

    /// Vendor ID, device ID and class code from the first 12 bytes of config space, or for a function
    /// in D3cold (which a config read would power up) from the kernel's copies of those registers,
    /// the `vendor`, `device` and `class` attributes.
    private func headerIdentity(_ bdf: BDF) -> (vendor: UInt16, device: UInt16, classCode: UInt32)? {
        if PowerState.read(bdf: bdf, root: root).configReadWakes {
            let folder = root.device(bdf)
            func attribute<Value: FixedWidthInteger & UnsignedInteger>(_ name: String, as: Value.Type)
                -> Value?
            {
                root.readAttribute(folder + "/" + name).flatMap { HexNumber.parse($0, as: Value.self) }
            }
            guard let vendor = attribute("vendor", as: UInt16.self),
                let device = attribute("device", as: UInt16.self),
                let classCode = attribute("class", as: UInt32.self)
            else { return nil }
            return (vendor, device, classCode)
        }
        guard let bytes = try? root.readBytes(root.device(bdf) + "/config", offset: 0, count: 12),
            bytes.count == 12
        else { return nil }
        let vendor = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        let device = UInt16(bytes[2]) | UInt16(bytes[3]) << 8
        let classCode = UInt32(bytes[9]) | UInt32(bytes[10]) << 8 | UInt32(bytes[11]) << 16
        return (vendor, device, classCode)
    }

    /// What functions of one pass share: the members of each IOMMU group, each function's driver.
    struct SharedReads {
        var groupMembers: [String: [BDF]] = [:]
        var drivers: [BDF: String?] = [:]

        mutating func driver(_ bdf: BDF, in inventory: HostInventory) -> String? {
            if let known = drivers[bdf] { return known }
            let driver = inventory.root.linkName(inventory.root.device(bdf) + "/driver")
            drivers[bdf] = driver
            return driver
        }

        /// The driver of a function whose folder is open.
        mutating func driver(_ bdf: BDF, in folder: borrowing SysfsFolder) -> String? {
            if let known = drivers[bdf] { return known }
            let driver = folder.linkName("driver")
            drivers[bdf] = driver
            return driver
        }
    }

    /// Everything the API reports about one function. A function in D3cold is described without
    /// reading its config space (`describedFrom` is `sysfs`); the service lays what it last read of
    /// it over that.
    public func describe(_ function: PCIFunction) -> GPUDevice {
        var reads = SharedReads()
        return describe(function, sharing: &reads)
    }

    private func describe(_ function: PCIFunction, sharing reads: inout SharedReads) -> GPUDevice {
        root.withFolder("bus/pci/devices") { devices in
            describe(
                function, in: devices.folder(function.bdf.description), devices: devices, sharing: &reads)
        }
    }

    /// `folder` is the function's own, `devices` the `bus/pci/devices` folder that links to it.
    private func describe(
        _ function: PCIFunction, in folder: borrowing SysfsFolder, devices: borrowing SysfsFolder,
        sharing reads: inout SharedReads
    ) -> GPUDevice {
        let bdf = function.bdf
        // A full rescan every few minutes must not power up a GPU that runtime PM put in D3cold.
        let suspended = PowerState.read(in: folder).configReadWakes
        let config = suspended ? ConfigSpace([]) : ConfigSpace.readForInventory(folder)
        let cxl = config.cxlRange1SizeLow()
        let isNvgrace =
            function.vendorID == NvgraceDevices.nvidiaVendorID
            && (NvgraceDevices.deviceIDs.contains(function.deviceID) || firmwareMemory.entries[bdf] != nil)
        let probe: ReadinessProbeKind = cxl != nil ? .cxlDVSEC : isNvgrace ? .nvgraceBAR0 : .pci

        var memory: DeviceMemory?
        if !suspended, isNvgrace, let firmware = firmwareMemory.entries[bdf] {
            memory = try? NvgraceMemoryRules.layout(
                physicalBase: firmware.physicalBase, length: firmware.length,
                hasMigHardwareBug: config.hasMigHardwareBug,
                source: firmwareMemory.source)
        }

        return GPUDevice(
            bdf: bdf.description,
            vendorId: "0x" + hex(function.vendorID, width: 4),
            deviceId: "0x" + hex(function.deviceID, width: 4),
            subsystemVendorId: "0x" + hex(function.subsystemVendorID, width: 4),
            subsystemDeviceId: "0x" + hex(function.subsystemDeviceID, width: 4),
            vendorName: function.vendorName,
            deviceName: function.deviceName,
            nameSource: function.deviceNameSource,
            classCode: "0x" + hex(function.classCode, width: 6),
            revision: "0x" + hex(function.revision, width: 2),
            driver: reads.driver(bdf, in: folder),
            driverOverride: Self.driverOverride(folder.readAttribute("driver_override")),
            iommuGroup: iommuGroup(folder.linkName("iommu_group"), sharing: &reads),
            numaNode: folder.readAttribute("numa_node").flatMap { Int($0) }.flatMap {
                $0 < 0 ? nil : $0
            },
            parentBridge: parentBridge(bdf, linkText: devices.readLink(bdf.description)),
            link: PCILink(
                currentSpeed: folder.readAttribute("current_link_speed").flatMap(LinkSpeed.parse),
                currentWidth: folder.readAttribute("current_link_width").flatMap { Int($0) },
                maxSpeed: folder.readAttribute("max_link_speed").flatMap(LinkSpeed.parse),
                maxWidth: folder.readAttribute("max_link_width").flatMap { Int($0) }),
            resetMethods: ResetMethods.parse(folder.readAttribute("reset_method") ?? ""),
            readinessProbe: probe,
            bars: folder.readAttribute("resource").flatMap { try? ResourceFile.bars($0) } ?? [],
            memory: memory,
            state: suspended ? .notReady : instantState(config: config, cxl: cxl?.register),
            describedFrom: suspended ? .sysfs : .configSpace)
    }

    /// `(null)` is the kernel's spelling of "no override".
    private static func driverOverride(_ text: String?) -> String? {
        guard let text, text != "(null)", !text.isEmpty else { return nil }
        return text
    }

    public func iommuGroup(_ bdf: BDF) -> IOMMUGroup? {
        var reads = SharedReads()
        return iommuGroup(root.linkName(root.device(bdf) + "/iommu_group"), sharing: &reads)
    }

    /// The group named `name` (the `iommu_group` link's last component), its members and their drivers.
    private func iommuGroup(_ name: String?, sharing reads: inout SharedReads) -> IOMMUGroup? {
        guard let name, let id = Int(name) else { return nil }
        let members =
            reads.groupMembers[name]
            ?? root.list("kernel/iommu_groups/\(name)/devices").compactMap { BDF($0) }.sorted()
        reads.groupMembers[name] = members
        return IOMMUGroup(
            id: id, members: members.map { .init(bdf: $0.description, driver: reads.driver($0, in: self)) })
    }

    /// In sysfs a function's folder sits inside its upstream bridge's folder. `bus/pci/devices/<bdf>`
    /// links to that folder by a relative path with no link along it, so the link's text names the
    /// parent (one `readlink` where `realpath` takes one per component of the root's path); any
    /// other spelling is resolved in full.
    public func parentBridge(_ bdf: BDF) -> String? {
        parentBridge(bdf, linkText: root.readLink(root.device(bdf)))
    }

    /// `parentBridge` from the text of the function's `bus/pci/devices` link, already read.
    private func parentBridge(_ bdf: BDF, linkText: String?) -> String? {
        let link = root.device(bdf)
        let components: [Substring]
        if let target = linkText.map({ $0.split(separator: "/") }), target.count >= 2,
            target.last == Substring(bdf.description), target[target.count - 2] != "..",
            target[target.count - 2] != "."
        {
            components = target
        } else if let resolved = root.resolve(link) {
            components = resolved.split(separator: "/")
        } else {
            return nil
        }
        guard components.count >= 2, let parent = BDF(components[components.count - 2]) else { return nil }
        return parent.description
    }

    /// What one look at config space says, without waiting: all-ones means the device does not answer;
    /// a CXL device is ready once its memory is valid and active.
    private func instantState(config: ConfigSpace, cxl: CXLRange1SizeLow?) -> DeviceState {
        if config.bytes.isEmpty { return .missing }
        if config.isAllOnes { return .notReady }
        if let cxl, !(cxl.memoryInfoValid && cxl.memoryActive) { return .notReady }
        return .ready
    }
}
