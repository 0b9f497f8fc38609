/// What a `DeviceEventSource` hands its handler.
public enum DeviceEventDelivery: Sendable, Hashable {
    /// Events that arrived together, in the kernel's order.
    case events([DeviceEvent])
    /// The kernel dropped events (the socket's buffer overflowed: ENOBUFS), so what changed is
    /// unknown: the receiver must rescan everything.
    case overflow
}
