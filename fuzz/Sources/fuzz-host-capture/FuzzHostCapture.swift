import Passthrough

/// A capture file of any bytes, as `graced --simulate --capture` and bug reports hand it over: it
/// reads as a capture or a `HostCaptureError`, and one that reads is laid out as a tree (in memory
/// only, nothing is written) or refused, never a trap. A capture that reads also reads back from
/// what it writes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let capture: HostCapture
    do {
        capture = try HostCapture.decode(bytes)
    } catch {
        _ = error.description
        return 0
    }
    _ = capture.firmwareMemoryTable
    let written = capture.encoded()
    do {
        let reread = try HostCapture.decode(written)
        precondition(reread.encoded() == written, "a capture does not read back as written")
    } catch {
        preconditionFailure("a capture's own output does not read: \(error)")
    }
    do {
        let builder = try CaptureTreeBuilder(capture)
        _ = (builder.functions.count, builder.drivers.count, builder.firmwareMemory.count)
    } catch {
        _ = error.description
    }
    return 0
}
