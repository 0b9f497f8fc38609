/// A sysfs hex number: `0x10de` or `10de`, nothing but hex digits after the optional prefix.
///
/// The standard library's `UInt32(_:radix:)` also takes a leading `+` or `-`, so `0x+10de` would
/// pass for a vendor ID; the kernel never writes one, and a file that does is not read as a number.
public enum HexNumber {
    public static func parse<Value: FixedWidthInteger & UnsignedInteger>(
        _ text: some StringProtocol, as: Value.Type = Value.self
    ) -> Value? {
        let whole = Substring(text)
        let digits = whole.hasPrefix("0x") || whole.hasPrefix("0X") ? whole.dropFirst(2) : whole
        guard !digits.isEmpty, digits.utf8.allSatisfy(isHexDigit) else { return nil }
        return Value(digits, radix: 16)
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default: false
        }
    }
}
