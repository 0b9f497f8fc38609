import Dispatch
import Passthrough
import Synchronization

/// The simulated kernel's uevents: what `SimulatedKernel` announces when a write adds, removes,
/// binds or unbinds a function, handed to every started source as the real kernel would send them on
/// netlink (after the change is visible in the tree, in order, on another thread).
public final class SimulatedDeviceEvents: Sendable {
    private struct Subscriber: Sendable {
        let queue: DispatchQueue
        let handler: @Sendable (DeviceEventDelivery) -> Void
    }

    private struct State: Sendable {
        var nextID = 0
        var subscribers: [Int: Subscriber] = [:]
        var sent: [DeviceEvent] = []
    }

    private let state = Mutex(State())

    init() {}

    /// Every event announced so far, in order (for tests of the simulator itself).
    public var sent: [DeviceEvent] { state.withLock { $0.sent } }

    /// A source that receives the events announced after it starts.
    public func source() -> any DeviceEventSource { Source(hub: self) }

    /// Queues `events` for every subscriber. Called with the kernel's lock held, which orders
    /// announcements; delivery is asynchronous, so a handler may read the tree (or write to the
    /// kernel) without deadlock.
    func announce(_ events: [DeviceEvent]) {
        guard !events.isEmpty else { return }
        let subscribers = state.withLock { state in
            state.sent += events
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers {
            subscriber.queue.async { subscriber.handler(.events(events)) }
        }
    }

    fileprivate func subscribe(_ handler: @escaping @Sendable (DeviceEventDelivery) -> Void) -> (
        Int, DispatchQueue
    ) {
        let queue = DispatchQueue(label: "simulator.uevents")
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = Subscriber(queue: queue, handler: handler)
            return state.nextID
        }
        return (id, queue)
    }

    fileprivate func unsubscribe(_ id: Int) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }

    private final class Source: DeviceEventSource {
        let hub: SimulatedDeviceEvents
        private let subscription = Mutex<(id: Int, queue: DispatchQueue)?>(nil)

        init(hub: SimulatedDeviceEvents) { self.hub = hub }

        func start(_ handler: @escaping @Sendable (DeviceEventDelivery) -> Void) throws(KernelError) {
            try subscription.withLock { (current) throws(KernelError) in
                guard current == nil else {
                    throw KernelError(.resourceBusy, path: "simulator:uevent")
                }
                current = hub.subscribe(handler)
            }
        }

        func stop() {
            guard
                let current = subscription.withLock({ current in
                    defer { current = nil }
                    return current
                })
            else { return }
            hub.unsubscribe(current.id)
            // Whatever was queued before unsubscribing has run once this returns.
            current.queue.sync {}
        }
    }
}
