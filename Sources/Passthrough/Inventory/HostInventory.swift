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
        try managedFunctions().map(describe)
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

    /// Vendor ID, device ID and class code from the first 12 bytes of config space.
    private func headerIdentity(_ bdf: BDF) -> (vendor: UInt16, device: UInt16, classCode: UInt32)? {
        guard let bytes = try? root.readBytes(root.device(bdf) + "/config", offset: 0, count: 12),
            bytes.count == 12
        else { return nil }
        let vendor = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        let device = UInt16(bytes[2]) | UInt16(bytes[3]) << 8
        let classCode = UInt32(bytes[9]) | UInt32(bytes[10]) << 8 | UInt32(bytes[11]) << 16
        return (vendor, device, classCode)
    }

    /// Everything the API reports about one function.
    public func describe(_ function: PCIFunction) -> GPUDevice {
        let bdf = function.bdf
        let base = root.device(bdf)
        let config = ConfigSpace.readForInventory(root, base + "/config")
        let cxl = config.cxlRange1SizeLow()
        let isNvgrace =
            function.vendorID == NvgraceDevices.nvidiaVendorID
            && (NvgraceDevices.deviceIDs.contains(function.deviceID) || firmwareMemory.entries[bdf] != nil)
        let probe: ReadinessProbeKind = cxl != nil ? .cxlDVSEC : isNvgrace ? .nvgraceBAR0 : .pci

        var memory: DeviceMemory?
        if isNvgrace, let firmware = firmwareMemory.entries[bdf] {
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
            driver: root.linkName(base + "/driver"),
            driverOverride: driverOverride(bdf),
            iommuGroup: iommuGroup(bdf),
            numaNode: root.readOptionalString(base + "/numa_node").flatMap { Int($0) }.flatMap {
                $0 < 0 ? nil : $0
            },
            parentBridge: parentBridge(bdf),
            link: PCILink(
                currentSpeed: root.readOptionalString(base + "/current_link_speed").flatMap(LinkSpeed.parse),
                currentWidth: root.readOptionalString(base + "/current_link_width").flatMap { Int($0) },
                maxSpeed: root.readOptionalString(base + "/max_link_speed").flatMap(LinkSpeed.parse),
                maxWidth: root.readOptionalString(base + "/max_link_width").flatMap { Int($0) }),
            resetMethods: ResetMethods.parse(root.readOptionalString(base + "/reset_method") ?? ""),
            readinessProbe: probe,
            bars: (try? root.readString(base + "/resource")).flatMap { try? ResourceFile.bars($0) } ?? [],
            memory: memory,
            state: instantState(config: config, cxl: cxl?.register))
    }

    /// `(null)` is the kernel's spelling of "no override".
    private func driverOverride(_ bdf: BDF) -> String? {
        guard let text = root.readOptionalString(root.device(bdf) + "/driver_override"), text != "(null)",
            !text.isEmpty
        else { return nil }
        return text
    }

    public func iommuGroup(_ bdf: BDF) -> IOMMUGroup? {
        guard let name = root.linkName(root.device(bdf) + "/iommu_group"), let id = Int(name) else {
            return nil
        }
        let members = root.list("kernel/iommu_groups/\(name)/devices").compactMap { BDF($0) }.sorted()
        return IOMMUGroup(
            id: id,
            members: members.map {
                .init(bdf: $0.description, driver: root.linkName(root.device($0) + "/driver"))
            })
    }

    /// In sysfs a function's folder sits inside its upstream bridge's folder.
    public func parentBridge(_ bdf: BDF) -> String? {
        guard let resolved = root.resolve(root.device(bdf)) else { return nil }
        let components = resolved.split(separator: "/")
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
