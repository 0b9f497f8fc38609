import Passthrough

/// `BDF(_:)` on any text: it answers nil or an address that prints back as the text, lowercased.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let text = String(decoding: bytes, as: UTF8.self)
    if let bdf = BDF(text) {
        precondition(bdf.description == text.lowercased(), "\(text.debugDescription) printed as \(bdf)")
        precondition(BDF(bdf.description) == bdf, "\(bdf) does not read back")
    }
    // The same parser through a Substring, as the router and capture keys hand it one.
    _ = BDF(text.dropFirst())
    if bytes.count >= 5 {
        _ = BDF(
            domain: UInt16(bytes[0]) << 8 | UInt16(bytes[1]), bus: bytes[2], device: bytes[3],
            function: bytes[4])
    }
    return 0
}
