/// A PCI address, `DDDD:BB:DD.F` in hex: domain, bus, device (0 to 0x1f), function (0 to 7).
///
/// A BDF becomes part of a sysfs path, so parsing is strict: exactly that shape, hex digits only,
/// nothing before or after. Uppercase is accepted and normalised to lowercase, the kernel's spelling.
public struct BDF: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let domain: UInt16
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    public init?(domain: UInt16, bus: UInt8, device: UInt8, function: UInt8) {
        guard device < 0x20, function < 8 else { return nil }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `DDDD:BB:DD.F`; returns nil for anything else.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"),
            bytes[10] == UInt8(ascii: ".")
        else { return nil }
        func hex(_ range: Range<Int>) -> UInt32? {
            var value: UInt32 = 0
            for byte in bytes[range] {
                guard let digit = BDF.hexDigit(byte) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        guard let domain = hex(0..<4), let bus = hex(5..<7), let device = hex(8..<10),
            let function = hex(11..<12)
        else { return nil }
        self.init(
            domain: UInt16(domain), bus: UInt8(bus), device: UInt8(device), function: UInt8(function))
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var description: String {
        hex(domain, width: 4) + ":" + hex(bus, width: 2) + ":" + hex(device, width: 2) + "."
            + String(function)
    }

    public static func < (lhs: BDF, rhs: BDF) -> Bool {
        (lhs.domain, lhs.bus, lhs.device, lhs.function) < (rhs.domain, rhs.bus, rhs.device, rhs.function)
    }
}

/// Lowercase hex, zero-padded to `width` digits.
@inlinable
public func hex(_ value: some BinaryInteger, width: Int) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
