import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The kernel's answers are swift-system's `Errno`. What it lacks is the short symbolic name that
/// the API, the metrics and the logs show (`EBUSY`); its `description` is the C library's message,
/// which `message` names for the call sites that show both.
extension Errno {
    /// The symbolic name (`EBUSY`) of the codes a sysfs write or read answers with, or `E<code>`
    /// for one we do not name. Codes are the Linux (asm-generic) values.
    public var name: String {
        switch self {
        case .notPermitted: "EPERM"
        case .noSuchFileOrDirectory: "ENOENT"
        case .interrupted: "EINTR"
        case .ioError: "EIO"
        case .resourceTemporarilyUnavailable: "EAGAIN"
        case .resourceBusy: "EBUSY"
        case .operationNotSupportedByDevice: "ENODEV"
        case .invalidArgument: "EINVAL"
        case .inappropriateIOCTLForDevice: "ENOTTY"
        case .timeout: "ETIME"
        case .timedOut: "ETIMEDOUT"
        default: "E\(rawValue)"
        }
    }

    /// The C library's message for the code (`strerror`).
    public var message: String {
        guard let text = strerror(rawValue) else { return name }
        return String(cString: text)
    }
}
