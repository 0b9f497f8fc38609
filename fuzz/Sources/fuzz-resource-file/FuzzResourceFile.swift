import Passthrough

/// A sysfs `resource` file of any content: lines and BARs, or a `ResourceFileError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // As sysfs text is read: invalid UTF-8 becomes U+FFFD.
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let lines = try ResourceFile.lines(text)
        for line in lines {
            _ = line.size
        }
        // Read one way only: what is accepted is three `0x` + 1 to 16 hex digit fields a line.
        // Split as bytes, as the file is read: as Characters, "\r\n" is one grapheme and no line break.
        for row in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let blanks: [UInt8] = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r")]
            for field in row.split(whereSeparator: { blanks.contains($0) }) {
                let prefix = Array(field.prefix(2))
                precondition(
                    field.count > 2 && field.count <= 18 && prefix.count == 2
                        && prefix[0] == UInt8(ascii: "0")
                        && prefix[1] | 0x20 == UInt8(ascii: "x") && field.dropFirst(2).allSatisfy(isHexDigit),
                    "accepted the field \(String(decoding: field, as: UTF8.self).debugDescription)")
            }
        }
    } catch {
        _ = error.description
    }
    do {
        let bars = try ResourceFile.bars(text)
        for bar in bars {
            precondition((0..<ResourceFile.barCount).contains(bar.index), "BAR index \(bar.index)")
            precondition(bar.size > 0, "a BAR of size 0")
        }
    } catch {
        _ = error.description
    }
    return 0
}

private func isHexDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
        || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
}
