import Passthrough

/// A sysfs `resource` file of any content: lines and BARs, or a `ResourceFileError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // As sysfs text is read: invalid UTF-8 becomes U+FFFD.
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        for line in try ResourceFile.lines(text) {
            _ = line.size
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
