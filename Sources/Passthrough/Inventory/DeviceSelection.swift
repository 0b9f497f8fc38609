/// Which PCI functions GraceAPI manages: display-class functions by default, plus any PCI classes or
/// addresses an operator adds (a GPU's companion functions, an NVMe drive passed through beside it).
public struct DeviceSelection: Hashable, Sendable {
    public var classPrefixes: [ClassPrefix]
    public var addresses: Set<BDF>

    public init(classPrefixes: [ClassPrefix] = [.displayControllers], addresses: Set<BDF> = []) {
        self.classPrefixes = classPrefixes
        self.addresses = addresses
    }

    public static let displayClass = DeviceSelection()

    public func includes(_ function: PCIFunction) -> Bool {
        addresses.contains(function.bdf) || classPrefixes.contains { $0.matches(function.classCode) }
    }
}

/// The leading part of a 24-bit PCI class code: the base class (`0x01`), base and subclass
/// (`0x0108`), or all three bytes with the programming interface (`0x010802`).
public struct ClassPrefix: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt32
    /// 1, 2 or 3.
    public let bytes: Int

    public static let displayControllers = ClassPrefix(value: 0x03, bytes: 1, checked: ())

    public init?(value: UInt32, bytes: Int) {
        guard (1...3).contains(bytes), value < 1 << (8 * bytes) else { return nil }
        self.value = value
        self.bytes = bytes
    }

    private init(value: UInt32, bytes: Int, checked: Void) {
        self.value = value
        self.bytes = bytes
    }

    /// `0x0108`, `0108` or `0x00ff`: the number of hex digits (2, 4 or 6) says how much it matches.
    public init?(_ text: String) {
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? text.dropFirst(2) : Substring(text)
        guard [2, 4, 6].contains(digits.count), let value = HexNumber.parse(digits, as: UInt32.self) else {
            return nil
        }
        self.init(value: value, bytes: digits.count / 2)
    }

    public func matches(_ classCode: UInt32) -> Bool {
        classCode >> (8 * UInt32(3 - bytes)) == value
    }

    public var description: String { "0x" + hex(value, width: 2 * bytes) }
}
