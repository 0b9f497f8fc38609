import Dispatch
import GraceHTTP
import Logging
import Store
import Synchronization

/// The service's event stream: numbers each event, stores it, keeps the recent ones in memory and
/// hands them to every subscriber, without ever making the publisher wait for a consumer.
///
/// **Ids.** An event's id comes from the store (`events.id`, AUTOINCREMENT): written first, then
/// fanned out, so an id a client saw is one it can resume from after a restart. If the write
/// fails, the hub numbers the event itself, one above the last id it handed out, keeps it in
/// memory (the ring, and a list of unstored events) and reports `isDegraded`. On the next
/// publish it first writes the unstored events under their own ids, then the new one; the store's
/// insert takes `max(floor, sequence + 1)`, so the next stored id is above both the hub's last id and
/// anything the store ever handed out: ids only grow, also across a failure and a restart.
///
/// **The bound on unstored events.** At most `ringCapacity` events wait for the store; when a
/// longer failure makes more, the oldest waiting ones are dropped (the live stream had them) and
/// the hub remembers the newest id it dropped. A client resuming from before that id is not
/// served a silent gap: its stream opens with `stream.dropped`, resuming after the dropped ones.
///
/// **Retention.** The store keeps events for `retentionMs` (default 24 h) and at most
/// `retentionCount` (default 100 000); `prune()` enforces both and is called by the application's
/// periodic worker. The ring keeps the newest `ringCapacity` (default 4096), so a client that drops
/// and reconnects is usually served from memory.
///
/// **Heartbeats.** One thread for the whole hub (started by `start()`) ticks every
/// `min(heartbeat, 1 s)`: a subscriber that was sent nothing for a heartbeat interval gets
/// `: heartbeat`, which also lets the server notice a client that went away while idle; a
/// subscriber's `maxSeconds` deadline is enforced there too.
public final class EventHub: Sendable {
    public struct Configuration: Sendable {
        public var ringCapacity: Int
        public var subscriberMaxEvents: Int
        public var subscriberMaxBytes: Int
        public var retentionMs: Int64
        public var retentionCount: Int
        public var heartbeat: Duration
        /// The `retry:` hint (ms) sent when a stream opens.
        public var retryMs: Int

        public init(
            ringCapacity: Int = 4096, subscriberMaxEvents: Int = 1024, subscriberMaxBytes: Int = 1 << 20,
            retentionMs: Int64 = 24 * 3_600_000, retentionCount: Int = 100_000,
            heartbeat: Duration = .seconds(15),
            retryMs: Int = 3000
        ) {
            self.ringCapacity = max(1, ringCapacity)
            self.subscriberMaxEvents = max(1, subscriberMaxEvents)
            self.subscriberMaxBytes = max(1, subscriberMaxBytes)
            self.retentionMs = retentionMs
            self.retentionCount = retentionCount
            self.heartbeat = heartbeat
            self.retryMs = retryMs
        }
    }

    public let configuration: Configuration
    private let store: GraceStore
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    private let ticker = StoppableLoop()
    private let tickerWake = DispatchSemaphore(value: 0)

    private struct State {
        var lastId: Int64 = 0
        var ring: [ServiceEvent] = []
        /// Index of the oldest event in `ring` once it is full.
        var ringStart = 0
        var unstored: [ServiceEvent] = []
        /// The newest id dropped from `unstored` before the store took it: no resume can serve it.
        var lostThrough: Int64?
        /// Whether this outage has dropped events yet (logged once an outage).
        var losingEvents = false
        var degraded = false
        var nextSubscriber: UInt64 = 1
        var subscribers: [UInt64: EventSubscription] = [:]

        /// The ring, oldest first.
        var recent: [ServiceEvent] {
            Array(ring[ringStart...] + ring[..<ringStart])
        }
        var oldestInRing: Int64? { ring.isEmpty ? nil : ring[ringStart].id }

        mutating func remember(_ event: ServiceEvent, capacity: Int) {
            if ring.count < capacity {
                ring.append(event)
            } else {
                ring[ringStart] = event
                ringStart = (ringStart + 1) % capacity
            }
        }
    }

    private let state = Mutex(State())

    public init(
        store: GraceStore, configuration: Configuration = Configuration(), logger: Logger,
        clock: @escaping @Sendable () -> Int64 = { WallClock.nowMs() }
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        let last: Int64
        do {
            last = try store.lastEventId()
        } catch {
            logger.error("event log unreadable, numbering events from memory: \(error)")
            last = 0
        }
        state.withLock { $0.lastId = last }
    }

    deinit {
        stop()
    }

    // MARK: Publishing

    /// Publishes an event and returns it with its id. Never throws and never waits for a consumer:
    /// a store failure makes the hub `isDegraded` (see the type's notes), a slow subscriber is cut off.
    /// `payload` must encode as a JSON object (anything else is wrapped as `{"value": ...}`).
    /// The stream's own types (`stream.*`) are not for publishers (they would pass every filter).
    @discardableResult
    public func publish(type: EventType, gpu: String? = nil, job: String? = nil, payload: some Encodable)
        -> ServiceEvent
    {
        if type.isStreamControl {
            logger.error("\(type.rawValue) published by a publisher; the stream makes those")
        }
        let data: String
        if let bytes = try? HTTPResponse.encodeJSON(payload) {
            let text = String(decoding: bytes, as: UTF8.self)
            data = bytes.first == UInt8(ascii: "{") ? text : #"{"value":"# + text + "}"
        } else {
            logger.error("event \(type.rawValue) has a payload that does not encode; sent empty")
            data = "{}"
        }
        let atMs = clock()
        let (event, woken) = state.withLock { state -> (ServiceEvent, [EventSubscription]) in
            let event = ServiceEvent(
                id: assignId(&state, type: type.rawValue, atMs: atMs, gpu: gpu, job: job, dataJSON: data),
                type: type.rawValue, atMs: atMs, gpu: gpu, job: job, dataJSON: data)
            state.remember(event, capacity: configuration.ringCapacity)
            var woken: [EventSubscription] = []
            for (id, subscription) in state.subscribers {
                switch subscription.offer(event) {
                case .queued: woken.append(subscription)
                case .skipped: break
                case .overflowed:
                    woken.append(subscription)
                    state.subscribers[id] = nil
                    logger.warning("event subscriber \(id) too slow; cut off with stream.overflow")
                case .closed: state.subscribers[id] = nil
                }
            }
            return (event, woken)
        }
        // Outside the hub's lock: waking resumes an HTTP connection, which takes MHD's locks.
        for subscription in woken { subscription.wakeConsumer() }
        return event
    }

    /// Stores the event (after any unstored ones) and returns its id, or numbers it in memory.
    private func assignId(
        _ state: inout State, type: String, atMs: Int64, gpu: String?, job: String?, dataJSON: String
    ) -> Int64 {
        do {
            while let first = state.unstored.first {
                let id = try store.appendEvent(
                    type: first.type, atMs: first.atMs, gpu: first.gpu, job: first.job,
                    dataJSON: first.dataJSON,
                    atLeast: first.id ?? 0)
                if id != first.id {
                    logger.error("event \(first.id ?? 0) was stored late as \(id)")
                }
                state.lastId = max(state.lastId, id)
                state.unstored.removeFirst()
            }
            let id = try store.appendEvent(
                type: type, atMs: atMs, gpu: gpu, job: job, dataJSON: dataJSON, atLeast: state.lastId + 1)
            if state.degraded {
                logger.notice("event log writable again")
                state.degraded = false
                state.losingEvents = false
            }
            state.lastId = id
            return id
        } catch {
            if !state.degraded {
                logger.error("event log not writable, keeping events in memory: \(error)")
                state.degraded = true
            }
            state.lastId += 1
            let event = ServiceEvent(
                id: state.lastId, type: type, atMs: atMs, gpu: gpu, job: job, dataJSON: dataJSON)
            state.unstored.append(event)
            if state.unstored.count > configuration.ringCapacity {
                let excess = state.unstored.count - configuration.ringCapacity
                state.lostThrough = state.unstored[excess - 1].id
                state.unstored.removeFirst(excess)
                if !state.losingEvents {
                    logger.error(
                        "event log still not writable after \(configuration.ringCapacity) events: the oldest unstored ones are dropped; clients resuming from before them get stream.dropped"
                    )
                    state.losingEvents = true
                }
            }
            return state.lastId
        }
    }

    // MARK: Subscribing

    /// A new subscriber. With `after` (a client's `Last-Event-ID`), it first receives every retained
    /// event after that id that `filter` wants, with no gap and no duplicate against the live events
    /// that follow; if some of them were pruned, its first event is `stream.dropped`. With
    /// `maxSeconds`, its stream ends after that long.
    public func subscribe(after: Int64? = nil, filter: EventFilter = .all, maxSeconds: Int? = nil)
        -> EventSubscription
    {
        let deadline = maxSeconds.map { ContinuousClock.now.advanced(by: .seconds($0)) }
        // The ticker looks again, so that this deadline is met to the millisecond (it may be sooner
        // than the tick it is waiting for).
        defer { if deadline != nil { tickerWake.signal() } }
        let opening = [Array(": graced events\nretry: \(configuration.retryMs)\n\n".utf8)]
        let nowMs = clock()
        return state.withLock { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            var initial: [ServiceEvent] = []
            var replay: (cursor: Int64, upTo: Int64)?
            func dropped(resumingFrom available: Int64) -> ServiceEvent {
                ServiceEvent(
                    id: nil, type: EventType.streamDropped.rawValue, atMs: nowMs, gpu: nil, job: nil,
                    dataJSON: String(
                        decoding: JSON.encode(
                            StreamDroppedPayload(requestedAfter: after ?? 0, resumesFrom: available)),
                        as: UTF8.self))
            }
            if let after, after > state.lastId {
                // An id this log never gave (its database was replaced, or the id is made up): the
                // client cannot know what it missed, so it is told, as for a pruned resume point.
                initial.append(dropped(resumingFrom: state.lastId + 1))
            } else if let after, after < state.lastId {
                if let oldest = state.oldestInRing, oldest <= after + 1 {
                    initial = state.recent.filter { ($0.id ?? 0) > after }
                } else {
                    // Older than the ring: the store has the rest (read lazily, as the client reads),
                    // except events dropped while it failed, which nothing has any more.
                    let stored = (try? store.oldestEventId()) ?? nil
                    var available = [stored, state.oldestInRing].compactMap { $0 }.min() ?? state.lastId + 1
                    if let lost = state.lostThrough, lost > after { available = max(available, lost + 1) }
                    var cursor = after
                    if available > after + 1 {
                        initial.append(dropped(resumingFrom: available))
                        cursor = available - 1
                    }
                    if cursor < state.lastId { replay = (cursor, state.lastId) }
                }
            }
            let subscription = EventSubscription(
                id: id, filter: filter, maxEvents: configuration.subscriberMaxEvents,
                maxBytes: configuration.subscriberMaxBytes, opening: opening, replay: replay,
                initial: initial,
                deadline: deadline,
                backlog: { [weak self] after, upTo, limit in
                    self?.backlog(after: after, upTo: upTo, limit: limit, filter: filter)
                        ?? Backlog(events: [], complete: true)
                },
                onFinish: { [weak self] id in self?.unsubscribe(id) })
            state.subscribers[id] = subscription
            return subscription
        }
    }

    /// A page of a replay: the events the subscriber's filter wants, and whether the page reaches
    /// `upTo` (nothing more to read).
    struct Backlog: Sendable {
        var events: [ServiceEvent]
        var complete: Bool
    }

    /// Retained events after `after` up to `upTo` that `filter` wants, oldest first, at most `limit`:
    /// from the ring when it reaches back that far, else from the store (which filters through its
    /// indexes, so a filter that matches nothing costs one short query, not a walk over the log),
    /// else (the store failed) whatever the ring has.
    private func backlog(after: Int64, upTo: Int64, limit: Int, filter: EventFilter) -> Backlog {
        func fromRing(_ state: State) -> Backlog {
            let wanted = state.recent.lazy.filter {
                ($0.id ?? 0) > after && ($0.id ?? 0) <= upTo && filter.matches($0)
            }
            let page = Array(wanted.prefix(limit))
            return Backlog(events: page, complete: page.count < limit)
        }
        if let ring = state.withLock({ state -> Backlog? in
            guard let oldest = state.oldestInRing, oldest <= after + 1 else { return nil }
            return fromRing(state)
        }) {
            return ring
        }
        do {
            let stored = try store.events(
                after: after, upTo: upTo, gpu: filter.gpu, types: filter.types, limit: limit)
            return Backlog(events: stored.map(ServiceEvent.init), complete: stored.count < limit)
        } catch {
            logger.error("event log unreadable for a resume: \(error)")
        }
        return state.withLock { fromRing($0) }
    }

    private func unsubscribe(_ id: UInt64) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
    }

    // MARK: Upkeep

    /// Subscribers connected now.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Whether the last store write failed (events are numbered and kept in memory meanwhile).
    public var isDegraded: Bool { state.withLock { $0.degraded } }

    /// The id of the newest event, 0 before the first.
    public var lastId: Int64 { state.withLock { $0.lastId } }

    /// Deletes stored events past the retention. Called from the application's periodic worker.
    @discardableResult
    public func prune() -> Int {
        do {
            return try store.pruneEvents(
                olderThanMs: clock() - configuration.retentionMs, keepingAtMost: configuration.retentionCount)
        } catch {
            logger.error("could not prune the event log: \(error)")
            return 0
        }
    }

    /// One heartbeat round (the ticker's body; tests call it directly).
    public func tick() {
        let now = ContinuousClock.now
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscription in subscribers where subscription.tick(now: now, heartbeat: configuration.heartbeat)
        {
            subscription.wakeConsumer()
        }
    }

    /// Starts the heartbeat thread.
    public func start() {
        let interval = min(configuration.heartbeat, .seconds(1))
        let ms = max(
            1,
            Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000))
        ticker.start { [self] in
            while !ticker.isStopping {
                let subscribers = state.withLock { Array($0.subscribers.values) }
                let wait = Self.tickerWait(
                    interval: .milliseconds(ms), now: .now, deadlines: subscribers.compactMap(\.deadline))
                let (seconds, attoseconds) = wait.components
                let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
                _ = tickerWake.wait(timeout: .now() + .nanoseconds(nanoseconds))
                if ticker.isStopping { break }
                tick()
            }
        }
    }

    /// How long the ticker sleeps: its interval, or less when a stream's `maxSeconds` deadline comes
    /// sooner, so that the stream ends at its deadline and not up to an interval later.
    static func tickerWait(
        interval: Duration, now: ContinuousClock.Instant, deadlines: [ContinuousClock.Instant]
    ) -> Duration {
        guard let soonest = deadlines.min() else { return interval }
        return max(.zero, min(interval, now.duration(to: soonest)))
    }

    /// Stops the heartbeat thread and ends every subscriber's stream (after what it has buffered).
    public func stop() {
        ticker.stop { tickerWake.signal() }
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscription in subscribers { subscription.stop() }
    }
}
