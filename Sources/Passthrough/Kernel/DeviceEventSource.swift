/// Where inventory learns that the host's PCI functions changed, without rescanning the bus:
/// `NetlinkUeventSource` on a real kernel, the simulated kernel's `SimulatedDeviceEvents` in tests
/// and the demo. Both deliver the same `DeviceEvent`s, so the code that reacts to them is the same.
///
/// Events arrive on a thread of the source's own (never Swift's cooperative pool), in the order the
/// kernel sent them, in batches: whatever arrived together is handed over at once, so a burst (a
/// bridge removed with everything below it) costs one re-read.
public protocol DeviceEventSource: Sendable {
    /// Starts delivering to `handler` until `stop()`. Throws when the source cannot be opened (no
    /// netlink in this network namespace, say): the caller then relies on periodic rescans.
    func start(_ handler: @escaping @Sendable (DeviceEventDelivery) -> Void) throws(KernelError)

    /// Stops delivering; returns once no handler call is running or will run.
    func stop()
}
