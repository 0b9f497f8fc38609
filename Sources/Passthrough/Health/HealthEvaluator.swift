/// What a GPU should look like, as first seen at its address.
public struct HealthBaseline: Hashable, Sendable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemDeviceID: UInt16

    public init(vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16, subsystemDeviceID: UInt16) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemDeviceID = subsystemDeviceID
    }

    /// The IDs in a config header, or nil when it is too short or all-ones.
    public init?(_ config: ConfigSpace) {
        guard !config.isAllOnes, let vendor = config.vendorID, let device = config.deviceID,
            let subsystemVendor = config.read16(at: 0x2C), let subsystem = config.read16(at: 0x2E)
        else { return nil }
        self.init(
            vendorID: vendor, deviceID: device, subsystemVendorID: subsystemVendor,
            subsystemDeviceID: subsystem)
    }

    var text: String {
        "\(hex(vendorID, width: 4)):\(hex(deviceID, width: 4)) "
            + "(subsystem \(hex(subsystemVendorID, width: 4)):\(hex(subsystemDeviceID, width: 4)))"
    }
}

/// A problem seen, with when it was first seen in this streak (wall-clock milliseconds).
public struct HealthFinding: Hashable, Sendable {
    public var reason: HealthReason
    public var detail: String
    public var sinceMs: Int64

    public init(reason: HealthReason, detail: String, sinceMs: Int64) {
        self.reason = reason
        self.detail = detail
        self.sinceMs = sinceMs
    }
}

/// What the watch remembers about one GPU between looks.
public struct HealthMemory: Hashable, Sendable {
    /// Identity at the first look that could read it.
    public var baseline: HealthBaseline?
    /// AER totals at the previous look, and when each last rose.
    public var aerTotals: [HealthReason: UInt64] = [:]
    public var aerRoseAtMs: [HealthReason: Int64] = [:]
    public var findings: [HealthFinding] = []

    public init(baseline: HealthBaseline? = nil) {
        self.baseline = baseline
    }
}

/// Turns one observation into findings. Pure: no I/O, time given, memory in and out.
public enum HealthEvaluator {
    /// How long a rise of an AER counter keeps its reason up: errors are events, and a dashboard
    /// polling every few seconds must not miss one between two looks.
    public static let aerHoldMs: Int64 = 300_000

    public static func evaluate(
        _ observation: HealthObservation, memory: HealthMemory, nowMs: Int64
    ) -> (findings: [HealthFinding], memory: HealthMemory) {
        var memory = memory
        var found: [(HealthReason, String)] = []

        if observation.power.isD3cold {
            found.append(
                (
                    .d3cold,
                    "power_state is D3cold (runtime_status \(observation.power.runtimeStatus ?? "absent")): "
                        + "the device is powered off; config space was not read so as not to wake it"
                ))
        } else if let config = observation.config {
            if config.count < 64 || config.isAllOnes {
                found.append(
                    (
                        .allOnes,
                        config.isAllOnes
                            ? "config space reads all-ones (vendor ID 0xffff): the device does not answer; "
                                + "it may have fallen off the bus (power_state \(observation.power.state ?? "absent"))"
                            : "config space could not be read (\(config.count) bytes)"
                    ))
            } else {
                if let seen = HealthBaseline(config) {
                    if let baseline = memory.baseline, baseline != seen {
                        found.append((.identityChanged, "reads \(seen.text), was \(baseline.text)"))
                    } else if memory.baseline == nil {
                        memory.baseline = seen
                    }
                }
                if let degraded = linkDegradation(observation) {
                    found.append((.linkDegraded, degraded))
                }
            }
        }

        for (reason, total) in observation.aer {
            if let before = memory.aerTotals[reason], total > before {
                memory.aerRoseAtMs[reason] = nowMs
            }
            memory.aerTotals[reason] = total
            if let rose = memory.aerRoseAtMs[reason], nowMs - rose < aerHoldMs {
                found.append(
                    (reason, "\(reason.aerFile) TOTAL rose to \(total) within the last \(aerHoldMs / 1000) s")
                )
            }
        }

        let findings = found.map { reason, detail in
            HealthFinding(
                reason: reason, detail: detail,
                sinceMs: memory.findings.first { $0.reason == reason }?.sinceMs ?? nowMs)
        }
        .sorted { $0.reason.rawValue < $1.reason.rawValue }
        memory.findings = findings
        return (findings, memory)
    }

    /// The link trained below the smaller maximum of its two ends, or is down; nil when fine or not
    /// PCI Express. Read from the device's own Link Capabilities and Link Status registers.
    static func linkDegradation(_ observation: HealthObservation) -> String? {
        guard let capabilities = observation.linkCapabilities, let status = observation.linkStatus,
            let deviceMax = LinkSpeed.gigatransfersPerSecond(code: capabilities.maxSpeedCode),
            capabilities.maxWidth > 0
        else { return nil }
        // Retraining: speed and width are not settled; the next look decides.
        if status.linkTraining { return nil }
        let maxSpeed = min(deviceMax, observation.upstreamMaxSpeed ?? deviceMax)
        let maxWidth = min(capabilities.maxWidth, observation.upstreamMaxWidth ?? capabilities.maxWidth)
        let speed = LinkSpeed.gigatransfersPerSecond(code: status.currentSpeedCode)
        if status.width == 0 || speed == nil {
            return "link is down (Link Status 0x\(hex(status.raw, width: 4)))"
        }
        guard let speed, speed < maxSpeed || status.width < maxWidth else { return nil }
        return
            "link trained at \(format(speed)) GT/s x\(status.width), capable of \(format(maxSpeed)) GT/s x\(maxWidth)"
    }

    static func format(_ speed: Double) -> String {
        speed == speed.rounded() ? String(Int(speed)) : String(speed)
    }
}

extension HealthReason {
    var aerFile: String {
        switch self {
        case .aerFatal: "aer_dev_fatal"
        case .aerNonfatal: "aer_dev_nonfatal"
        default: "aer_dev_correctable"
        }
    }
}
