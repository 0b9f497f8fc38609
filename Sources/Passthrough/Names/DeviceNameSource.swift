/// Where a device's `deviceName` came from.
public enum DeviceNameSource: String, Codable, Hashable, Sendable, CaseIterable {
    /// libpci found the device in the pci.ids file: the system's (`/usr/share/misc/pci.ids`) or the
    /// one given with `graced serve --pci-ids`.
    case pciIDs = "pci.ids"
    /// The pci.ids file does not name this NVIDIA data-centre GPU; the name is from graced's own table
    /// (`NVIDIADataCenterNames`), copied from a newer pci.ids.
    case graced
    /// Neither knows the device: the name is libpci's `Device XXXX` form (the device ID in hex).
    /// Spelled `unnamed` in Swift so that it never reads as `Optional.none`.
    case unnamed = "none"
}

/// A device's name and where it came from.
public struct DeviceName: Hashable, Sendable {
    public var name: String
    public var source: DeviceNameSource

    public init(name: String, source: DeviceNameSource) {
        self.name = name
        self.source = source
    }

    /// The name a device gets: the pci.ids file's when it has one, else graced's table for NVIDIA
    /// data-centre GPUs, else libpci's `Device XXXX` form.
    ///
    /// - Parameter pciIDsName: the name the pci.ids file gives the device, nil when it has none.
    public static func resolve(vendorID: UInt16, deviceID: UInt16, pciIDsName: String?) -> DeviceName {
        if let pciIDsName {
            return DeviceName(name: pciIDsName, source: .pciIDs)
        }
        if vendorID == NVIDIADataCenterNames.vendorID, let name = NVIDIADataCenterNames.table[deviceID] {
            return DeviceName(name: name, source: .graced)
        }
        return DeviceName(name: unknownName(deviceID), source: .unnamed)
    }

    /// libpci's spelling of a device its database does not know: `Device 2342`.
    public static func unknownName(_ deviceID: UInt16) -> String {
        let digits = String(deviceID, radix: 16)
        return "Device " + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
