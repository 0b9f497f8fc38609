/// What one look at a device says about its readiness.
///
/// Facts worth keeping that are not a verdict (a fallback taken, when a phase began) go to the
/// probe's `notes` instead, so an observation stays a plain value that can be compared poll to poll.
public enum ProbeObservation: Hashable, Sendable, CustomStringConvertible {
    /// The device can be handed over.
    case ready
    /// Not yet; poll again. The text says why, for the job's record and for a timeout.
    case notReady(String)
    /// The device does not answer and will not: its sysfs folder or config file is gone (ENODEV).
    /// Ends a wait at once.
    case gone(String)
    /// A check-specific final verdict, such as a CXL timeout the device itself defines (ETIME).
    /// Ends a wait at once.
    case failed(String)

    public var isReady: Bool { self == .ready }

    /// The why, without the verdict; empty for `.ready`.
    public var reason: String {
        switch self {
        case .ready: ""
        case .notReady(let why), .gone(let why), .failed(let why): why
        }
    }

    public var description: String {
        switch self {
        case .ready: "ready"
        case .notReady(let why): "not ready: " + why
        case .gone(let why): "gone: " + why
        case .failed(let why): "failed: " + why
        }
    }
}
