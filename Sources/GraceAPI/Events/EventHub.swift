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
        /// GPUs whose events wait for their job's commit, with how many holds each.
        var held: [String: Int] = [:]
        /// Events of held GPUs, in the order they were published.
        var queued: [Queued] = []
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

    /// An event waiting for its id, with the time it was published.
    private struct Queued {
        var draft: EventDraft
        var atMs: Int64
    }

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
    /// An event of a GPU a job holds is queued until the job commits (`hold`); it is returned
    /// without an id.
    @discardableResult
    public func publish(type: EventType, gpu: String? = nil, job: String? = nil, payload: some Encodable)
        -> ServiceEvent
    {
        let draft = EventDraft(type: type, gpu: gpu, job: job, payload: payload)
        return publish([draft]).first
            ?? ServiceEvent(
                id: nil, type: type.rawValue, atMs: clock(), gpu: gpu, job: job, dataJSON: draft.dataJSON)
    }

    /// Publishes `drafts` in order: those of a held GPU are queued for its holder's next `commit`,
    /// the others are stored in one transaction and handed to the subscribers. Returns those stored.
    @discardableResult
    public func publish(_ drafts: [EventDraft]) -> [ServiceEvent] {
        checkPublishers(drafts)
        let atMs = clock()
        let (events, woken) = state.withLock { state -> ([ServiceEvent], [EventSubscription]) in
            var now: [Queued] = []
            for draft in drafts {
                if let gpu = draft.gpu, state.held[gpu] != nil {
                    state.queued.append(Queued(draft: draft, atMs: atMs))
                } else {
                    now.append(Queued(draft: draft, atMs: atMs))
                }
            }
            guard !now.isEmpty else { return ([], []) }
            let events = record(&state, now, alongWith: nil).events
            return (events, fanOut(&state, events))
        }
        wake(woken)
        return events
    }

    /// Stores, in one transaction, the events queued for `gpus`, then `write` (a job's change), then
    /// `drafts` (the events it caused), and hands the events to the subscribers once it is committed.
    /// Events are never lost to a failed `write`: it is tried again without it. Returns whether `write`
    /// was committed.
    @discardableResult
    public func commit(
        _ drafts: [EventDraft] = [], heldFor gpus: Set<String> = [],
        alongWith write: ((Connection) throws -> Void)? = nil
    ) -> Bool {
        checkPublishers(drafts)
        let atMs = clock()
        let (wrote, woken) = state.withLock { state -> (Bool, [EventSubscription]) in
            let pending = Self.takeQueued(&state, for: gpus) + drafts.map { Queued(draft: $0, atMs: atMs) }
            guard !pending.isEmpty || write != nil else { return (true, []) }
            let (events, wrote) = record(&state, pending, alongWith: write)
            return (wrote, fanOut(&state, events))
        }
        wake(woken)
        return wrote
    }

    /// Stores `write` and `drafts` in one transaction, or neither: when `write` (a new job's insert)
    /// fails, its error is thrown and nothing is published.
    @discardableResult
    public func publish(
        _ drafts: [EventDraft], heldFor gpus: Set<String> = [],
        atomicallyWith write: (Connection) throws -> Void
    ) throws -> [ServiceEvent] {
        checkPublishers(drafts)
        let atMs = clock()
        let (events, woken) = try state.withLock { state -> ([ServiceEvent], [EventSubscription]) in
            let pending = Self.takeQueued(&state, for: gpus) + drafts.map { Queued(draft: $0, atMs: atMs) }
            let events = try insert(&state, pending, alongWith: write)
            return (events, fanOut(&state, events))
        }
        wake(woken)
        return events
    }

    /// From now on the events of `gpus` (a job's devices, from the start of its run) wait for the
    /// job's `commit`, so that a step's transitions, the GPU states they show and the job's record are
    /// one transaction. Holds nest: each `hold` needs its `release`.
    public func hold(_ gpus: Set<String>) {
        state.withLock { state in
            for gpu in gpus { state.held[gpu, default: 0] += 1 }
        }
    }

    /// Ends a `hold`, storing what is still queued for `gpus`.
    public func release(_ gpus: Set<String>) {
        state.withLock { state in
            for gpu in gpus {
                let holders = (state.held[gpu] ?? 1) - 1
                state.held[gpu] = holders > 0 ? holders : nil
            }
        }
        commit(heldFor: gpus)
    }

    /// The queued events of `gpus`, in order, taken off the queue.
    private static func takeQueued(_ state: inout State, for gpus: Set<String>) -> [Queued] {
        guard !gpus.isEmpty else { return [] }
        var taken: [Queued] = []
        state.queued.removeAll { queued in
            guard let gpu = queued.draft.gpu, gpus.contains(gpu) else { return false }
            taken.append(queued)
            return true
        }
        return taken
    }

    private func checkPublishers(_ drafts: [EventDraft]) {
        for draft in drafts where draft.type.isStreamControl {
            logger.error("\(draft.type.rawValue) published by a publisher; the stream makes those")
        }
    }

    /// Stores `pending` (with `write`, when given) and returns them with their ids; if that fails,
    /// stores them without `write`; if that fails too, numbers them in memory (degraded).
    private func record(
        _ state: inout State, _ pending: [Queued], alongWith write: ((Connection) throws -> Void)?
    )
        -> (events: [ServiceEvent], wrote: Bool)
    {
        do {
            return (try insert(&state, pending, alongWith: write ?? { _ in }), true)
        } catch {
            if write != nil, let events = try? insert(&state, pending, alongWith: { _ in }) {
                return (events, false)
            }
            if !state.degraded {
                logger.error("event log not writable, keeping events in memory: \(error)")
                state.degraded = true
            }
            let events = pending.map { queued in
                state.lastId += 1
                return ServiceEvent(
                    id: state.lastId, type: queued.draft.type.rawValue, atMs: queued.atMs,
                    gpu: queued.draft.gpu,
                    job: queued.draft.job, dataJSON: queued.draft.dataJSON)
            }
            state.unstored += events
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
            return (events, write == nil)
        }
    }

    /// One transaction: the unstored events under their own ids, `write`, then `pending`, each id
    /// above the last handed out.
    private func insert(
        _ state: inout State, _ pending: [Queued], alongWith write: (Connection) throws -> Void
    ) throws -> [ServiceEvent] {
        let unstored = state.unstored
        let floor = state.lastId
        let (late, ids) = try store.database.transaction { connection -> ([Int64], [Int64]) in
            var late: [Int64] = []
            for event in unstored {
                late.append(
                    try GraceStore.appendEvent(
                        connection, type: event.type, atMs: event.atMs, gpu: event.gpu, job: event.job,
                        dataJSON: event.dataJSON, atLeast: event.id ?? 0))
            }
            try write(connection)
            var last = max(floor, late.max() ?? 0)
            var ids: [Int64] = []
            for queued in pending {
                last = try GraceStore.appendEvent(
                    connection, type: queued.draft.type.rawValue, atMs: queued.atMs, gpu: queued.draft.gpu,
                    job: queued.draft.job, dataJSON: queued.draft.dataJSON, atLeast: last + 1)
                ids.append(last)
            }
            return (late, ids)
        }
        for (event, id) in zip(unstored, late) where id != event.id {
            logger.error("event \(event.id ?? 0) was stored late as \(id)")
        }
        state.unstored.removeAll()
        if state.degraded {
            logger.notice("event log writable again")
            state.degraded = false
            state.losingEvents = false
        }
        state.lastId = max(state.lastId, late.max() ?? 0, ids.last ?? 0)
        return zip(pending, ids).map { queued, id in
            ServiceEvent(
                id: id, type: queued.draft.type.rawValue, atMs: queued.atMs, gpu: queued.draft.gpu,
                job: queued.draft.job, dataJSON: queued.draft.dataJSON)
        }
    }

    /// Remembers `events` in the ring and offers them to every subscriber; returns those to wake.
    private func fanOut(_ state: inout State, _ events: [ServiceEvent]) -> [EventSubscription] {
        var woken: [UInt64: EventSubscription] = [:]
        for event in events {
            state.remember(event, capacity: configuration.ringCapacity)
            for (id, subscription) in state.subscribers {
                switch subscription.offer(event) {
                case .queued: woken[id] = subscription
                case .skipped: break
                case .overflowed:
                    woken[id] = subscription
                    state.subscribers[id] = nil
                    logger.warning("event subscriber \(id) too slow; cut off with stream.overflow")
                case .closed: state.subscribers[id] = nil
                }
            }
        }
        return Array(woken.values)
    }

    /// Outside the hub's lock: waking resumes an HTTP connection, which takes MHD's locks.
    private func wake(_ woken: [EventSubscription]) {
        for subscription in woken { subscription.wakeConsumer() }
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
        // Whatever a job left held (a worker still blocked in the kernel at shutdown) is stored.
        let held = state.withLock { state in Set(state.queued.compactMap(\.draft.gpu)) }
        commit(heldFor: held)
        ticker.stop { tickerWake.signal() }
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscription in subscribers { subscription.stop() }
    }
}
