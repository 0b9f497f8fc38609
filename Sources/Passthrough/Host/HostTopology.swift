/// The PCI topology as sysfs shows it: who sits behind which bridge, who shares an IOMMU group, who is
/// bound to what. Everything is a read under the root, taken fresh on every call.
///
/// sysfs nests a function's real folder inside its upstream bridge's folder
/// (`devices/pci0009:00/0009:00:00.0/0009:01:00.0`), so the parent bridge and the subtree behind a
/// bridge come from resolving the `bus/pci/devices/<bdf>` links, with no config space decoding.
public struct HostTopology: Sendable {
    public let root: SysfsRoot

    public init(root: SysfsRoot) {
        self.root = root
    }

    /// Every function the kernel lists, in BDF order.
    public func allFunctions() -> [BDF] {
        root.list("bus/pci/devices").compactMap { BDF($0) }.sorted()
    }

    public func exists(_ bdf: BDF) -> Bool {
        root.resolve(root.device(bdf)) != nil
    }

    /// The function's real folder, absolute with links resolved.
    private func folder(_ bdf: BDF) -> String? {
        root.resolve(root.device(bdf))
    }

    /// The folder holding the function's folder: a bridge's, or the host bridge's `pciDDDD:BB`.
    private func parentFolder(_ bdf: BDF) -> (path: String, name: Substring)? {
        guard let path = folder(bdf), let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            return nil
        }
        let parent = path[..<slash]
        let name = parent[parent.index(after: parent.lastIndex(of: "/") ?? parent.startIndex)...]
        return (String(parent), name)
    }

    /// The bridge whose secondary bus the function sits on; nil on a root bus or for an unknown device.
    public func parentBridge(_ bdf: BDF) -> BDF? {
        parentFolder(bdf).flatMap { BDF($0.name) }
    }

    /// True when the function hangs directly off a host bridge (`pciDDDD:BB`): no bridge above it can
    /// reset its bus.
    public func isOnRootBus(_ bdf: BDF) -> Bool {
        guard let parent = parentFolder(bdf) else { return false }
        return parent.name.hasPrefix("pci") && BDF(parent.name) == nil
    }

    /// class << 16 | subclass << 8 | prog-if from the `class` file.
    public func classCode(_ bdf: BDF) -> UInt32? {
        root.readOptionalString(root.device(bdf) + "/class").flatMap { HexNumber.parse($0) }
    }

    /// A PCI-to-PCI bridge (root and switch ports included): class 0x0604, or a type 1 (bridge) or
    /// type 2 (CardBus) config header for bridges that report another class.
    public func isBridge(_ bdf: BDF) -> Bool {
        if let code = classCode(bdf), code >> 8 == 0x0604 { return true }
        // Header type at 0x0E; bit 7 only says multi-function. The first 64 bytes are readable by anyone.
        guard let header = try? root.readBytes(root.device(bdf) + "/config", offset: 0x0E, count: 1).first
        else { return false }
        return header & 0x7f == 1 || header & 0x7f == 2
    }

    /// The bound driver's name (the `driver` link), nil when unbound.
    public func driver(_ bdf: BDF) -> String? {
        root.linkName(root.device(bdf) + "/driver")
    }

    /// The `driver_override` value, nil when unset (`(null)`) or unreadable.
    public func driverOverride(_ bdf: BDF) -> String? {
        guard let text = root.readOptionalString(root.device(bdf) + "/driver_override"), text != "(null)",
            !text.isEmpty
        else { return nil }
        return text
    }

    /// Whether `bus/pci/drivers/<name>` exists: the driver is registered (its module is loaded).
    public func driverExists(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && name != "." && name != ".."
            && root.exists("bus/pci/drivers/\(name)")
    }

    /// The IOMMU group number, nil without an IOMMU (or for an unknown device).
    public func iommuGroup(_ bdf: BDF) -> Int? {
        root.linkName(root.device(bdf) + "/iommu_group").flatMap { Int($0) }
    }

    /// The device files through which a user (a VM) holds the function: its group's `/dev/vfio/<N>`,
    /// and, with the VFIO cdev interface that iommufd users open instead, `/dev/vfio/devices/vfioN`
    /// for each node sysfs lists under `vfio-dev/`.
    public func vfioNodes(_ bdf: BDF) -> [String] {
        let group = iommuGroup(bdf).map { [ProcessTable.vfioGroupPath($0)] } ?? []
        let devices = root.list(root.device(bdf) + "/vfio-dev").filter { $0.hasPrefix("vfio") }
        return group + devices.map { "/dev/vfio/devices/" + $0 }
    }

    /// Every function in the same IOMMU group, the function itself included, in BDF order. A function
    /// without a group is alone.
    public func iommuGroupMembers(_ bdf: BDF) -> [BDF] {
        guard let group = iommuGroup(bdf) else { return exists(bdf) ? [bdf] : [] }
        let members = root.list("kernel/iommu_groups/\(group)/devices").compactMap { BDF($0) }
        return Set(members + [bdf]).sorted()
    }

    /// Every function a reset of the function's bus reaches: the functions whose folders sit in the
    /// same parent folder, and everything below them (a secondary bus reset propagates down through
    /// switches). The parent bridge itself is not included. For a function on a root bus this is the
    /// whole host bridge's tree, which no bus reset can reach anyway.
    public func functionsSharingBus(_ bdf: BDF) -> [BDF] {
        guard let parent = parentFolder(bdf) else { return [] }
        let prefix = parent.path + "/"
        return allFunctions().filter { other in
            guard let path = folder(other) else { return false }
            return path.hasPrefix(prefix)
        }
    }

    /// The `reset_method` list in priority order; nil when the attribute is absent (kernels before
    /// 5.15, or a vanished device), empty when the device has no method.
    public func resetMethods(_ bdf: BDF) -> [String]? {
        root.readOptionalString(root.device(bdf) + "/reset_method").map { ResetMethods.parse($0) }
    }

    /// Vendor, device, subsystem and class IDs from their attributes.
    public func identity(_ bdf: BDF) -> PCIIdentity? {
        PCIIdentity(root: root, bdf: bdf)
    }
}
