import Passthrough

// The payloads of the events the service publishes, one struct per event type, so that publishers
// and openapi.yaml agree on the fields. Every field is present; null when it does not apply.

/// `job.queued`.
public struct JobQueuedPayload: Encodable, Sendable {
    public var kind: String
    @NullEncodable public var method: String?
    public init(kind: String, method: String?) {
        self.kind = kind
        self.method = method
    }
}

/// `job.phase`.
public struct JobPhasePayload: Encodable, Sendable {
    public var phase: String
    public init(phase: String) { self.phase = phase }
}

/// `job.attempt`: one kernel write (`reset`, `bind`, ...) and how it went; `errno` null on success.
public struct JobAttemptPayload: Encodable, Sendable {
    public var attempt: Int
    public var write: String
    @NullEncodable public var errno: Int?
    public var message: String
    public init(attempt: Int, write: String, errno: Int?, message: String) {
        self.attempt = attempt
        self.write = write
        self.errno = errno
        self.message = message
    }
}

/// `job.finished`: the job's final state and, unless it succeeded, why.
public struct JobFinishedPayload: Encodable, Sendable {
    public var state: String
    @NullEncodable public var error: String?
    public init(state: String, error: String?) {
        self.state = state
        self.error = error
    }
}

/// `device.state`.
public struct DeviceStatePayload: Encodable, Sendable {
    public var from: String
    public var to: String
    public var reason: String
    public init(from: String, to: String, reason: String) {
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// `inventory.added` and `inventory.removed`: the GPU as it was seen.
public struct InventoryDevicePayload: Encodable, Sendable, Hashable {
    public var vendorId: String
    public var deviceId: String
    public var deviceName: String
    @NullEncodable public var driver: String?
    public init(_ gpu: GPUDevice) {
        vendorId = gpu.vendorId
        deviceId = gpu.deviceId
        deviceName = gpu.deviceName
        driver = gpu.driver
    }
}

/// `inventory.driver_changed`: null when no driver is bound.
public struct DriverChangedPayload: Encodable, Sendable, Hashable {
    @NullEncodable public var from: String?
    @NullEncodable public var to: String?
    public init(from: String?, to: String?) {
        self.from = from
        self.to = to
    }
}

/// `inventory.layout_drift`.
public struct LayoutDriftPayload: Encodable, Sendable, Hashable {
    public var changes: String
    public init(changes: String) { self.changes = changes }
}

/// `stream.dropped`: events `requestedAfter + 1 ..< resumesFrom` are gone.
struct StreamDroppedPayload: Encodable {
    var requestedAfter: Int64
    var resumesFrom: Int64
}

/// `stream.overflow`: what was waiting for the client when it was cut off, and the last id it was sent
/// in full (null if none), from which it resumes.
struct StreamOverflowPayload: Encodable {
    var queuedEvents: Int
    var queuedBytes: Int
    @NullEncodable var lastId: Int64?
}
