@testable import Passthrough
@testable import PassthroughSimulator

/// A capture file of any bytes, as `graced --simulate --capture` and bug reports hand it over: it
/// reads as a capture or a `HostCaptureError`, and one that reads is turned into simulated functions
/// and a checked topology or refused, never a trap or a hang. Nothing is written: the paths the tree
/// would have are computed, not created. A capture that reads also reads back from what it writes.
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
        _ = builder.firmwareMemory.count
        // What `build(at:)` computes before it writes a file: the topology check, each function's
        // depth and folder, each bridge's bus range.
        let tree = try SysfsTreeBuilder(
            root: SysfsRoot(path: "/nonexistent"), functions: builder.functions, drivers: builder.drivers)
        for function in tree.functions.values {
            _ = (tree.depth(of: function), tree.devicePath(function.bdf), tree.isMultiFunction(function))
            if function.isBridge { _ = tree.busRange(of: function) }
        }
    } catch let error as HostCaptureError {
        _ = error.description
    } catch {
        _ = error
    }
    return 0
}
