#if canImport(Glibc)
    import Glibc
#endif

/// Creates a fresh folder from a `mkdtemp` template such as `/tmp/grace-tokens-XXXXXX` and returns
/// its path. Callers keep their templates under `/tmp`: a Unix socket inside must fit `sun_path`,
/// which a folder under a long TMPDIR might not. A folder that cannot be made stops the test run.
public func makeTemporaryFolder(_ template: String) -> String {
    var bytes = Array(template.utf8CString)
    let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
    precondition(made, "mkdtemp(\(template)) failed: errno \(errno)")
    return String(decoding: bytes.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
