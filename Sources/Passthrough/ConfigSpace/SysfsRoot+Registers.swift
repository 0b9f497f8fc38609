#if canImport(Glibc)
    import Glibc
#endif

extension SysfsRoot {
    /// Several registers of one file (config space) through one open descriptor: a readiness poll
    /// reads two or three, hundreds of times a second, and the open and close cost more than the
    /// reads themselves. Each result holds what `pread` returned (shorter past the end). Throws the
    /// errno of the open or of a read.
    public func readRegisters(_ relative: String, _ ranges: [(offset: Int, count: Int)]) throws(KernelError)
        -> [[UInt8]]
    {
        let fd = open(absolute(relative), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        var results: [[UInt8]] = []
        for range in ranges {
            var buffer = [UInt8](repeating: 0, count: range.count)
            let got = buffer.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress, range.count, off_t(range.offset))
            }
            guard got >= 0 else { throw KernelError(code: errno, path: relative) }
            configReads?.record(file: relative, offset: range.offset, count: got)
            results.append(Array(buffer[0..<got]))
        }
        return results
    }
}
