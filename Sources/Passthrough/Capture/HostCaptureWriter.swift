#if canImport(Glibc)
    import Glibc
#endif

/// Records a host's PCI view from a sysfs tree, reading only: nothing under the root is written.
///
/// Per function (every entry of `bus/pci/devices`): its real folder, every readable attribute of its
/// folder and of `power/` (a read that fails is recorded with its errno), its links as stored, the
/// whole `config` file, the sizes of its memory-mapped files (`resourceN`, `resourceN_wc`, `rom`,
/// which are never read) and the folder's listing. Also the IOMMU groups, the drivers with what is
/// bound to them, and the passthrough-related modules.
///
/// A capture travels with bug reports, so it carries no serial numbers: the Device Serial Number
/// capability's 8 data bytes and the VPD capability's data register are zeroed in config space, and
/// the `vpd` and `serial_number` files are listed but never read (reading VPD can also stall on
/// devices with a broken VPD implementation).
public struct HostCaptureWriter: Sendable {
    public let root: SysfsRoot
    /// `uname -r`, worth recording only when the root is the running kernel's /sys.
    public var kernelRelease: String?
    /// Firmware memory (ACPI `_DSD`) the caller knows from elsewhere; sysfs does not show it.
    public var firmwareMemory: [BDF: FirmwareMemory]

    /// Files listed but never read: they hold serial numbers.
    public static let privateFiles: Set<String> = ["vpd", "serial_number"]
    /// Loaded modules worth recording, by name prefix.
    public static let moduleFamilies = ["nvidia", "nouveau", "nvgrace", "vfio", "cxl", "mlx5"]

    public init(root: SysfsRoot, kernelRelease: String? = nil, firmwareMemory: [BDF: FirmwareMemory] = [:]) {
        self.root = root
        self.kernelRelease = kernelRelease
        self.firmwareMemory = firmwareMemory
    }

    /// The running kernel's release (`uname -r`).
    public static func runningKernelRelease() -> String? {
        var names = utsname()
        guard uname(&names) == 0 else { return nil }
        return withUnsafeBytes(of: names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public func capture() -> HostCapture {
        var devices: [String: CapturedFunction] = [:]
        for name in root.list("bus/pci/devices") {
            guard let bdf = BDF(name), let function = function(bdf) else { continue }
            devices[bdf.description] = function
        }
        var groups: [String: [String]] = [:]
        for group in root.list("kernel/iommu_groups") {
            groups[group] = root.list("kernel/iommu_groups/\(group)/devices").filter { BDF($0) != nil }
        }
        var drivers: [String: [String]] = [:]
        for driver in root.list("bus/pci/drivers") where root.entry("bus/pci/drivers/\(driver)") == .folder {
            drivers[driver] = root.list("bus/pci/drivers/\(driver)").filter { BDF($0) != nil }
        }
        let modules = root.list("module").filter { name in
            Self.moduleFamilies.contains { name.hasPrefix($0) }
        }
        return HostCapture(
            kernelRelease: kernelRelease, devices: devices, iommuGroups: groups, drivers: drivers,
            modules: modules, firmwareMemory: firmwareMemory)
    }

    /// One function's folder; nil when it vanished while we looked.
    func function(_ bdf: BDF) -> CapturedFunction? {
        let base = root.device(bdf)
        guard let resolved = root.resolve(base) else { return nil }
        let top = root.resolve("") ?? root.path
        // Spelled as on the host (`/sys/devices/...`) whatever folder played /sys here.
        let realpath = resolved.hasPrefix(top + "/") ? "/sys" + resolved.dropFirst(top.count) : resolved

        let entries = root.list(base)
        var attributes: [String: CapturedAttribute] = [:]
        // The format always says whether these two exist.
        var links: [String: String?] = ["driver": nil, "iommu_group": nil]
        var config: [UInt8] = []
        var files: [String: UInt64] = [:]
        for name in entries {
            let path = base + "/" + name
            switch root.entry(path) {
            case .link:
                links[name] = root.readLink(path)
            case .folder where name == "power":
                for inner in root.list(path) {
                    if case .file(_, readable: true) = root.entry(path + "/" + inner) {
                        attributes["power/" + inner] = read(path + "/" + inner)
                    }
                }
            case .file(let size, let readable):
                if name == "config" {
                    config = Self.withoutSerialNumbers((try? root.readBytes(path, limit: 4096)) ?? [])
                } else if Self.isMemoryMapped(name) {
                    files[name] = size
                } else if readable && !Self.privateFiles.contains(name) {
                    attributes[name] = read(path)
                }
            default:
                continue
            }
        }
        return CapturedFunction(
            realpath: realpath, attributes: attributes, links: links, config: config, files: files,
            entries: entries)
    }

    private func read(_ path: String) -> CapturedAttribute {
        do {
            return .text(String(decoding: try root.readBytes(path, limit: 64 << 10), as: UTF8.self))
        } catch {
            return .failed(errno: error.errno.rawValue, error: error.message)
        }
    }

    /// `resourceN`, `resourceN_wc` and `rom`: windows onto device memory, only their size is a fact.
    static func isMemoryMapped(_ name: String) -> Bool {
        if name == "rom" { return true }
        guard name.hasPrefix("resource") else { return false }
        var digits = name.dropFirst("resource".count)
        if digits.hasSuffix("_wc") { digits = digits.dropLast(3) }
        return !digits.isEmpty && digits.allSatisfy { ("0"..."9").contains($0) }
    }

    /// Config space with the serial numbers zeroed: the Device Serial Number capability's 8 data
    /// bytes and the VPD capability's data register (the last VPD dword read).
    public static func withoutSerialNumbers(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        let space = ConfigSpace(bytes)
        func zero(_ range: Range<Int>) {
            for index in range where index < bytes.count { bytes[index] = 0 }
        }
        for capability in space.extendedCapabilities()
        where capability.id == ExtendedCapability.deviceSerialNumber {
            zero(capability.offset + 4..<capability.offset + 12)
        }
        for capability in space.capabilities() where capability.id == Capability.vitalProductData {
            zero(capability.offset + 4..<capability.offset + 8)
        }
        return bytes
    }
}
