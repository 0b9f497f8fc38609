/// Which PCI functions GraceAPI manages: display-class functions by default, plus any PCI classes or
/// addresses an operator adds (a GPU's companion functions, an NVMe drive passed through beside it).
public struct DeviceSelection: Hashable, Sendable {
    /// Class prefixes: `0x03` (a base class), `0x0108` (base and subclass) or `0x010802` (with prog-if).
    public var classPrefixes: [UInt32]
    public var addresses: Set<BDF>

    public init(classPrefixes: [UInt32] = [0x03], addresses: Set<BDF> = []) {
        self.classPrefixes = classPrefixes
        self.addresses = addresses
    }

    public static let displayClass = DeviceSelection()

    public func includes(_ function: PCIFunction) -> Bool {
        if addresses.contains(function.bdf) { return true }
        return classPrefixes.contains { prefix in
            switch prefix {
            case 0..<0x100: function.classCode >> 16 == prefix
            case 0x100..<0x10000: function.classCode >> 8 == prefix
            default: function.classCode == prefix
            }
        }
    }
}
