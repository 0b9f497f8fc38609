/// A problem the health watch can see on an idle GPU, and how bad it is.
public enum HealthReason: String, Codable, Hashable, Sendable, CaseIterable {
    /// Config space reads all-ones (vendor 0xffff, "Unknown header type 7f"): the device does not
    /// answer config requests; it has fallen off the bus or is stuck in reset.
    case allOnes = "all_ones"
    /// `power_state` says D3cold: the device is powered off, and the next VM start may fail.
    case d3cold
    /// The link trained below what both ends of it can do (speed or width).
    case linkDegraded = "link_degraded"
    /// Vendor, device or subsystem IDs differ from those first seen at this address.
    case identityChanged = "identity_changed"
    /// AER counters in sysfs rose recently.
    case aerFatal = "aer_fatal"
    case aerNonfatal = "aer_nonfatal"
    case aerCorrectable = "aer_correctable"

    /// A failed GPU should not be given to a VM; a degraded one works, slower or noisier.
    public var status: HealthStatus {
        switch self {
        case .allOnes, .d3cold, .identityChanged, .aerFatal: .failed
        case .linkDegraded, .aerNonfatal, .aerCorrectable: .degraded
        }
    }
}

/// The health of a GPU in one word; `unknown` until the watch has looked at it once.
public enum HealthStatus: String, Codable, Hashable, Sendable, Comparable {
    case unknown
    case ok
    case degraded
    case failed

    private var rank: Int {
        switch self {
        case .unknown: 0
        case .ok: 1
        case .degraded: 2
        case .failed: 3
        }
    }

    public static func < (lhs: HealthStatus, rhs: HealthStatus) -> Bool { lhs.rank < rhs.rank }
}
