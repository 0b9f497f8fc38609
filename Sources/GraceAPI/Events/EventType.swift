/// Every kind of event the stream carries; openapi.yaml describes each one's payload.
public enum EventType: String, CaseIterable, Sendable {
    /// A job was accepted: `{kind, method}`.
    case jobQueued = "job.queued"
    /// A job entered a phase: `{phase}`.
    case jobPhase = "job.phase"
    /// A kernel write was attempted: `{attempt, write, errno, message}`.
    case jobAttempt = "job.attempt"
    /// A job ended: `{state, error}`.
    case jobFinished = "job.finished"
    /// A GPU's state changed: `{from, to, reason}`.
    case deviceState = "device.state"
    /// A GPU appeared on the bus: `{vendorId, deviceId, deviceName, driver}`.
    case inventoryAdded = "inventory.added"
    /// A GPU left the bus: `{vendorId, deviceId, deviceName, driver}`.
    case inventoryRemoved = "inventory.removed"
    /// A GPU's driver changed outside a job or through one: `{from, to}`.
    case inventoryDriverChanged = "inventory.driver_changed"
    /// A GPU's memory layout differs from the one recorded before: `{changes}`.
    case inventoryLayoutDrift = "inventory.layout_drift"
    /// The stream's own: the events after the client's `Last-Event-ID` were pruned before it came
    /// back; `{requestedAfter, resumesFrom}`. Never stored, carries no id.
    case streamDropped = "stream.dropped"
    /// The stream's own, its last: the client read too slowly and is disconnected; resuming with its
    /// last id loses nothing that is still retained. `{queuedEvents, queuedBytes, lastId}`.
    case streamOverflow = "stream.overflow"

    /// The names a client may filter on, in declaration order.
    public static var names: [String] { allCases.map(\.rawValue) }

    /// The stream's own events reach every subscriber, whatever its filter.
    var isStreamControl: Bool { self == .streamDropped || self == .streamOverflow }
}
