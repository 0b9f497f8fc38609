#if canImport(Glibc)
    import Glibc
#endif

/// An errno from the kernel, with what we were doing when it came back.
///
/// The typed error of every effect across the seam. Codes are the Linux (asm-generic) values.
public struct KernelError: Error, Hashable, Sendable, CustomStringConvertible {
    public let code: Int32
    /// The sysfs attribute or file involved, relative to the sysfs root.
    public let path: String

    public init(code: Int32, path: String) {
        self.code = code
        self.path = path
    }

    public static let eperm: Int32 = 1
    public static let enoent: Int32 = 2
    public static let eintr: Int32 = 4
    public static let eio: Int32 = 5
    public static let eagain: Int32 = 11
    public static let ebusy: Int32 = 16
    public static let enodev: Int32 = 19
    public static let einval: Int32 = 22
    public static let enotty: Int32 = 25
    public static let etime: Int32 = 62
    public static let etimedout: Int32 = 110

    /// The symbolic name (`EBUSY`), or `E<code>` for one we do not name.
    public var name: String {
        switch code {
        case Self.eperm: "EPERM"
        case Self.enoent: "ENOENT"
        case Self.eintr: "EINTR"
        case Self.eio: "EIO"
        case Self.eagain: "EAGAIN"
        case Self.ebusy: "EBUSY"
        case Self.enodev: "ENODEV"
        case Self.einval: "EINVAL"
        case Self.enotty: "ENOTTY"
        case Self.etime: "ETIME"
        case Self.etimedout: "ETIMEDOUT"
        default: "E\(code)"
        }
    }

    /// The C library's message for the code.
    public var message: String {
        guard let text = strerror(code) else { return name }
        return String(cString: text)
    }

    public var description: String { "\(path): \(name) (\(message))" }
}
