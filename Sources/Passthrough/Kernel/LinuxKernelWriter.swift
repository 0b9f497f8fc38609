#if canImport(Glibc)
    import Glibc
#endif

/// The production kernel writer: writes the value to the attribute under the sysfs root in one
/// `write(2)` (sysfs takes a store as a single call) and maps errno to `KernelError`.
public struct LinuxKernelWriter: KernelWriter {
    public let root: SysfsRoot

    public init(root: SysfsRoot) {
        self.root = root
    }

    public func perform(_ write: SysfsWrite) throws(KernelError) {
        let fd = open(root.absolute(write.path), O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(code: errno, path: write.path) }
        defer { close(fd) }
        let bytes = Array(write.value.utf8)
        while true {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count >= 0 { return }
            if errno == EINTR { continue }
            throw KernelError(code: errno, path: write.path)
        }
    }
}
