import CPCI
import Synchronization

/// One PCI function as libpci enumerates it: identity, class and names from pci.ids (the device's
/// name from graced's own table when pci.ids lacks an NVIDIA data-centre GPU).
public struct PCIFunction: Hashable, Sendable {
    public var bdf: BDF
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemDeviceID: UInt16
    /// class << 16 | subclass << 8 | programming interface.
    public var classCode: UInt32
    public var revision: UInt8
    public var vendorName: String
    public var deviceName: String
    /// Where `deviceName` came from.
    public var deviceNameSource: DeviceNameSource

    /// Display controllers (class 0x03xxxx): VGA, XGA, 3D controllers. Data-centre GPUs are 0x0302.
    public var isDisplayClass: Bool { classCode >> 16 == 0x03 }
}

/// A libpci failure, trapped before libpci could `exit(1)`.
public struct PCIScanError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Enumerates PCI functions through libpci, reading the sysfs tree under a root.
///
/// libpci keeps global state and has no locking, so every scan takes one process-wide lock and uses a
/// fresh `pci_access`. Scans block on file I/O: call this from a thread of your own, not from Swift's
/// cooperative pool.
public enum PCIScanner {
    /// Held by every libpci call.
    static let lock = Mutex(())
    private static let defaultIDs = Mutex<String?>(nil)

    /// The pci.ids file of a scan whose caller names none; nil (libpci's default,
    /// `/usr/share/misc/pci.ids`) until `graced serve --pci-ids` sets it at startup.
    public static var defaultIDsPath: String? {
        get { defaultIDs.withLock { $0 } }
        set { defaultIDs.withLock { $0 = newValue } }
    }

    /// - Parameter idsPath: a pci.ids file, or nil for `defaultIDsPath`.
    public static func scan(_ root: SysfsRoot, idsPath: String? = nil) throws(PCIScanError) -> [PCIFunction] {
        let idsPath = idsPath ?? defaultIDsPath
        return try lock.withLock { _ throws(PCIScanError) in
            var capacity = 256
            while true {
                var buffer = [grace_pci_function](repeating: grace_pci_function(), count: capacity)
                var error = [CChar](repeating: 0, count: 640)
                let count = buffer.withUnsafeMutableBufferPointer { entries in
                    error.withUnsafeMutableBufferPointer { message in
                        grace_pci_list(
                            root.pciBusPath, idsPath, entries.baseAddress, Int32(capacity),
                            message.baseAddress, message.count)
                    }
                }
                if count < 0 {
                    throw PCIScanError(
                        message: String(
                            decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
                if Int(count) > capacity {
                    capacity = Int(count)
                    continue
                }
                // Names repeat across a fleet ("NVIDIA Corporation" on every GPU): one copy of each
                // text, shared by every function and device that carries it.
                var names: [String: String] = [:]
                func shared(_ text: String) -> String {
                    if let known = names[text] { return known }
                    names[text] = text
                    return text
                }
                return buffer.prefix(Int(count)).compactMap(PCIFunction.init(entry:)).map { function in
                    var function = function
                    function.vendorName = shared(function.vendorName)
                    function.deviceName = shared(function.deviceName)
                    return function
                }.sorted { $0.bdf < $1.bdf }
            }
        }
    }
}

extension PCIFunction {
    fileprivate init?(entry: grace_pci_function) {
        guard
            let bdf = BDF(
                domain: entry.domain, bus: entry.bus, device: entry.device, function: entry.function)
        else { return nil }
        let name = DeviceName.resolve(
            vendorID: entry.vendor_id, deviceID: entry.device_id,
            pciIDsName: entry.device_name_known != 0 ? cString(entry.device_name) : nil)
        self.init(
            bdf: bdf, vendorID: entry.vendor_id, deviceID: entry.device_id,
            subsystemVendorID: entry.subsystem_vendor_id, subsystemDeviceID: entry.subsystem_device_id,
            classCode: entry.class_code, revision: entry.revision,
            vendorName: cString(entry.vendor_name), deviceName: name.name, deviceNameSource: name.source)
    }
}

/// A fixed-size C char array imported as a tuple, read up to its NUL.
private func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
