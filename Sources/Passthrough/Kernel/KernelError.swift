import SystemPackage

/// An errno from the kernel, with what we were doing when it came back.
///
/// The typed error of every effect across the seam.
public struct KernelError: Error, Hashable, Sendable, CustomStringConvertible {
    public let errno: Errno
    /// The sysfs attribute or file involved, relative to the sysfs root.
    public let path: String

    public init(_ errno: Errno, path: String) {
        self.errno = errno
        self.path = path
    }

    /// From a raw code, as `errno` is after a failed system call.
    public init(code: Int32, path: String) {
        self.init(Errno(rawValue: code), path: path)
    }

    /// The symbolic name (`EBUSY`), or `E<code>` for one we do not name.
    public var name: String { errno.name }

    /// The C library's message for the code.
    public var message: String { errno.message }

    public var description: String { "\(path): \(name) (\(message))" }
}
