import Passthrough
import SystemPackage

/// Why a job did not succeed, in the domain's words: no HTTP here. Routes/ turns it into the API's
/// problem shape (`JobProblems`).
struct JobFailure: Codable, Sendable, Equatable {
    enum Reason: String, Codable, Sendable {
        case cancelled = "job-cancelled"
        case deadline
        case wedged
        case kernelError = "kernel-error"
        case layoutDrift = "layout-drift"
        case driverNotBound = "driver-not-bound"
        case interrupted
        /// An escalating reset climbed every rung and the GPU is still not back.
        case needsReboot = "needs-reboot"
    }

    var reason: Reason
    /// One line: what went wrong ("The kernel refused the reset").
    var summary: String
    var detail: String
    var resolution: String
    var errno: Errno?

    init(_ reason: Reason, summary: String, detail: String, resolution: String, errno: Errno? = nil) {
        self.reason = reason
        self.summary = summary
        self.detail = detail
        self.resolution = resolution
        self.errno = errno
    }

    func with(detail: String) -> JobFailure {
        var copy = self
        copy.detail = detail
        return copy
    }

    // Records written before the domain type existed carry the problem's shape: its `type` ends in
    // the reason's slug and its `title` was the summary.
    private enum CodingKeys: String, CodingKey {
        case reason, summary, detail, resolution, errno, type, title
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let reason = try container.decodeIfPresent(Reason.self, forKey: .reason) {
            self.reason = reason
            summary = try container.decode(String.self, forKey: .summary)
        } else {
            let type = try container.decode(String.self, forKey: .type)
            let slug = String(type.split(separator: "/").last ?? "")
            reason = Reason(rawValue: slug) ?? .kernelError
            summary = try container.decode(String.self, forKey: .title)
        }
        detail = try container.decode(String.self, forKey: .detail)
        resolution = try container.decode(String.self, forKey: .resolution)
        errno = try container.decodeIfPresent(Int32.self, forKey: .errno).map { Errno(rawValue: $0) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(reason, forKey: .reason)
        try container.encode(summary, forKey: .summary)
        try container.encode(detail, forKey: .detail)
        try container.encode(resolution, forKey: .resolution)
        try container.encodeIfPresent(errno?.rawValue, forKey: .errno)
    }
}

extension JobFailure {
    static func cancelled(_ reason: String) -> JobFailure {
        JobFailure(
            .cancelled, summary: "Job cancelled", detail: "The job was cancelled (\(reason)).",
            resolution: "Submit it again when you want it to run.")
    }

    static func deadline(_ detail: String) -> JobFailure {
        JobFailure(
            .deadline, summary: "Deadline passed", detail: detail,
            resolution:
                "Retry with a longer deadlineSeconds if the device is known to be slow; check the host's logs otherwise."
        )
    }

    static func wedged(_ write: SysfsWrite) -> JobFailure {
        JobFailure(
            .wedged, summary: "Kernel write stuck",
            detail: "\(write) had not returned at the deadline; the kernel still holds the device.",
            resolution:
                "The device is wedged until the kernel returns: check the host's kernel log (a hung reset or a user holding the device); a reboot may be needed."
        )
    }

    /// The failure for a kernel error, with the errno and what to do about it.
    static func kernel(_ error: KernelError, during what: String) -> JobFailure {
        let resolution =
            switch error.errno {
            case .operationNotSupportedByDevice:
                "The device is gone from the bus: check `GET /gpus` (state missing), then the host's logs; a rescan or reboot may bring it back."
            case .inappropriateIOCTLForDevice:
                "The kernel could not use that method or the device did not come back: try another method from resetMethods, and check the host's logs."
            case .invalidArgument:
                "The kernel refused the request as invalid: check the method against resetMethods and the device's power state."
            case .resourceBusy, .resourceTemporarilyUnavailable:
                "The device stayed busy until the deadline: stop what is using it, or retry with a longer deadlineSeconds."
            default:
                "See the errno and the host's kernel log."
            }
        return JobFailure(
            .kernelError, summary: "The kernel refused the \(what)",
            detail: "\(what) failed with \(error.name) (\(error.message)) writing \(error.path).",
            resolution: resolution, errno: error.errno)
    }

    static func needsReboot(_ target: BDF, tried: [String]) -> JobFailure {
        JobFailure(
            .needsReboot, summary: "GPU needs a reboot",
            detail: "No rung brought \(target) back ready and verified (tried: "
                + (tried.isEmpty ? "nothing allowed" : tried.joined(separator: ", "))
                + "); it is now needs_reboot.",
            resolution:
                "Drain the host and power-cycle it (a warm reboot may not be enough); the GPU stays needs_reboot until a reset succeeds."
        )
    }

    static func interrupted(at phase: String, writeInFlight: String?) -> JobFailure {
        let inFlight =
            writeInFlight.map { " A kernel write had been issued and had not returned: \($0)." } ?? ""
        return JobFailure(
            .interrupted, summary: "Interrupted by a restart",
            detail: "graced stopped while the job was in its \(phase) phase.\(inFlight)",
            resolution:
                "Check the GPU's state with GET /gpus/{bdf}; submit the job again if it is still needed.")
    }
}
