/// Percent-decoding for query components and captured path segments.
///
/// Routing works on the raw target so that `%2F` never turns into a path separator; handlers
/// decode a captured segment themselves when they want its text.
public enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as a space when `plusAsSpace`, as in form-encoded queries).
    /// Malformed escapes stay as they are; invalid UTF-8 becomes U+FFFD rather than failing.
    public static func decode(_ text: some StringProtocol, plusAsSpace: Bool = false) -> String {
        let input = Array(text.utf8)
        guard input.contains(where: { $0 == 0x25 || (plusAsSpace && $0 == 0x2B) }) else {
            return String(text)
        }
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == 0x25, index + 2 < input.count, let high = hexValue(input[index + 1]),
                let low = hexValue(input[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(plusAsSpace && byte == 0x2B ? 0x20 : byte)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
