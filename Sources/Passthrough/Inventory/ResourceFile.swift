/// Why a sysfs `resource` file could not be read as the kernel writes it.
public enum ResourceFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A line that is not three hex numbers; `line` counts from 0, like the resource index.
    case malformedLine(line: Int, text: String)
    /// A used resource whose end lies before its start, or whose size does not fit in 64 bits.
    case invalidRange(line: Int, start: UInt64, end: UInt64)
    /// Fewer than the six BAR lines every PCI function's file has.
    case truncated(lineCount: Int)

    public var description: String {
        switch self {
        case .malformedLine(let line, let text):
            "resource line \(line) is malformed: \(text.debugDescription)"
        case .invalidRange(let line, let start, let end):
            "resource line \(line) has an invalid range 0x\(hex(start, width: 16))-0x\(hex(end, width: 16))"
        case .truncated(let count): "resource has \(count) lines, fewer than the 6 BARs"
        }
    }
}

/// The sysfs `resource` file of a PCI function.
///
/// The kernel prints one `0x%016llx 0x%016llx 0x%016llx` line (start, end, flags) per resource:
/// lines 0 to 5 are the BARs, 6 the expansion ROM, then SR-IOV VF BARs (7 to 12) and, for bridges,
/// the bridge windows. An unused resource prints as all zeros, including the upper half of a 64-bit BAR.
public enum ResourceFile {
    /// The `IORESOURCE_*` flag bits GraceAPI looks at.
    public static let ioFlag: UInt64 = 0x100
    public static let memoryFlag: UInt64 = 0x200
    public static let prefetchFlag: UInt64 = 0x2000
    public static let memory64Flag: UInt64 = 0x10_0000

    /// The number of standard BAR lines at the top of the file.
    public static let barCount = 6

    /// One line of the file.
    public struct Line: Hashable, Sendable {
        public let start: UInt64
        public let end: UInt64
        public let flags: UInt64

        public init(start: UInt64, end: UInt64, flags: UInt64) {
            self.start = start
            self.end = end
            self.flags = flags
        }

        /// Bytes covered: 0 for an unused (0 to 0) resource, else end - start + 1 (the kernel's
        /// `pci_resource_len`). Only valid for lines `lines(_:)` accepted.
        public var size: UInt64 { start == 0 && end == 0 ? 0 : end - start + 1 }
    }

    /// Every line of the file, strictly parsed. Trailing blank lines (the final newline) are allowed;
    /// anything else that is not three hex numbers is an error, so a change of format is noticed
    /// rather than silently read as empty BARs.
    public static func lines(_ text: some StringProtocol) throws(ResourceFileError) -> [Line] {
        // Bytes, not Characters: the file is ASCII, and at fleet scale (thousands of functions per
        // scan) grapheme-aware splitting was a visible part of the inventory's time.
        let text = String(text)
        var rows = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        while let last = rows.last, last.allSatisfy({ isBlank($0) }) {
            rows.removeLast()
        }
        var result: [Line] = []
        for (index, row) in rows.enumerated() {
            let fields = row.split(whereSeparator: isBlank)
            guard fields.count == 3, let start = parseHex(fields[0]), let end = parseHex(fields[1]),
                let flags = parseHex(fields[2])
            else { throw .malformedLine(line: index, text: String(decoding: row, as: UTF8.self)) }
            let line = Line(start: start, end: end, flags: flags)
            if !(start == 0 && end == 0) {
                guard end >= start, end - start < UInt64.max else {
                    throw .invalidRange(line: index, start: start, end: end)
                }
            }
            result.append(line)
        }
        return result
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    public static func bars(_ text: some StringProtocol) throws(ResourceFileError) -> [BAR] {
        let all = try lines(text)
        guard all.count >= barCount else { throw .truncated(lineCount: all.count) }
        return all.prefix(barCount).enumerated().compactMap { index, line in
            guard line.size > 0 else { return nil }
            return BAR(
                index: index, start: line.start, size: line.size,
                is64Bit: line.flags & memory64Flag != 0,
                prefetchable: line.flags & prefetchFlag != 0)
        }
    }

    /// `0x` and 1 to 16 hex digits.
    private static func parseHex(_ field: Substring.UTF8View.SubSequence) -> UInt64? {
        guard field.count > 2, field.count <= 18, field.first == UInt8(ascii: "0"),
            field.dropFirst().first.map({ $0 | 0x20 == UInt8(ascii: "x") }) == true
        else { return nil }
        var value: UInt64 = 0
        for byte in field.dropFirst(2) {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}
