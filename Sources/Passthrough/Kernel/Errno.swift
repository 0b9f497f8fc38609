#if canImport(Glibc)
    import Glibc
#endif

/// An errno value with a name: what the kernel answered, as a small value type (swift-system's
/// `Errno` is the model). Codes are the Linux (asm-generic) values.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// EPERM
    public static let notPermitted = Errno(1)
    /// ENOENT
    public static let noSuchEntry = Errno(2)
    /// EINTR
    public static let interrupted = Errno(4)
    /// EIO
    public static let ioError = Errno(5)
    /// EAGAIN
    public static let tryAgain = Errno(11)
    /// EBUSY
    public static let busy = Errno(16)
    /// ENODEV
    public static let noDevice = Errno(19)
    /// EINVAL
    public static let invalidArgument = Errno(22)
    /// ENOTTY: for a sysfs `reset`, the method could not be used or the device did not come back.
    public static let notSupportedByDevice = Errno(25)
    /// ETIME
    public static let timerExpired = Errno(62)
    /// ETIMEDOUT
    public static let timedOut = Errno(110)

    /// The symbolic name (`EBUSY`), or `E<code>` for one we do not name.
    public var name: String {
        switch self {
        case .notPermitted: "EPERM"
        case .noSuchEntry: "ENOENT"
        case .interrupted: "EINTR"
        case .ioError: "EIO"
        case .tryAgain: "EAGAIN"
        case .busy: "EBUSY"
        case .noDevice: "ENODEV"
        case .invalidArgument: "EINVAL"
        case .notSupportedByDevice: "ENOTTY"
        case .timerExpired: "ETIME"
        case .timedOut: "ETIMEDOUT"
        default: "E\(rawValue)"
        }
    }

    /// The C library's message for the code.
    public var message: String {
        guard let text = strerror(rawValue) else { return name }
        return String(cString: text)
    }

    public var description: String { name }
}
