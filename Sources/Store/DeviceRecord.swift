/// A stored device identity and when it was first and last observed.
public struct DeviceRecord: Hashable, Sendable {
    public var id: Int64
    public var identity: DeviceIdentity
    public var firstSeenMs: Int64
    public var lastSeenMs: Int64

    public init(id: Int64, identity: DeviceIdentity, firstSeenMs: Int64, lastSeenMs: Int64) {
        self.id = id
        self.identity = identity
        self.firstSeenMs = firstSeenMs
        self.lastSeenMs = lastSeenMs
    }
}
