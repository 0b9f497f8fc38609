import GraceHTTP
import Synchronization

/// One consumer of the event stream: a bounded queue the hub fills and the consumer (an SSE
/// connection, through `StreamSource`) drains as bytes.
///
/// The hub never waits for a subscriber: `offer` only appends under this subscription's own lock.
/// A subscriber whose queue would pass `maxEvents` or `maxBytes` is cut off: what was queued is
/// dropped, it receives one final `stream.overflow` event and its stream ends; resuming with the
/// last id it received loses nothing still retained.
///
/// A resume the in-memory ring cannot serve is replayed from the store lazily, a page at a time as
/// the client reads, while live events queue behind it (and count towards the bound).
public final class EventSubscription: StreamSource, Sendable {
    public let id: UInt64
    public let filter: EventFilter

    enum Ending {
        case overflow, stopped, deadline
    }

    private struct State {
        /// Bytes of the frame being sent, and how far.
        var current: [UInt8] = []
        var offset = 0
        /// Frames to send before anything else (the opening comment, `stream.dropped`, the replay).
        var front: [[UInt8]] = []
        var frontIndex = 0
        /// Live events, newest last.
        var queue: [ServiceEvent] = []
        var queueIndex = 0
        var queuedBytes = 0
        /// Still to replay from the hub's backlog: ids in `cursor + 1 ... upTo`.
        var replay: (cursor: Int64, upTo: Int64)?
        var ending: Ending?
        var finished = false
        var wake: (@Sendable () -> Void)?
        /// When bytes were last handed out (or a heartbeat queued).
        var lastActivity = ContinuousClock.now
        var lastSentId: Int64?
        var deadline: ContinuousClock.Instant?

        var queuedCount: Int { queue.count - queueIndex }
    }

    private let state: Mutex<State>
    private let maxEvents: Int
    private let maxBytes: Int
    /// Reads `after`'s successors up to `upTo` (at most `limit`) from the hub's ring or store.
    private let backlog: @Sendable (_ after: Int64, _ upTo: Int64, _ limit: Int) -> EventHub.Backlog
    private let onFinish: @Sendable (UInt64) -> Void

    static let replayPage = 256

    init(
        id: UInt64, filter: EventFilter, maxEvents: Int, maxBytes: Int, opening: [[UInt8]],
        replay: (cursor: Int64, upTo: Int64)?, initial: [ServiceEvent], deadline: ContinuousClock.Instant?,
        backlog: @escaping @Sendable (Int64, Int64, Int) -> EventHub.Backlog,
        onFinish: @escaping @Sendable (UInt64) -> Void
    ) {
        self.id = id
        self.filter = filter
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.backlog = backlog
        self.onFinish = onFinish
        var state = State()
        state.front = opening + initial.filter(filter.matches).map(\.frame)
        state.replay = replay
        state.deadline = deadline
        self.state = Mutex(state)
    }

    /// Live events waiting for the client (not counting a replay in progress).
    public var queuedEvents: Int { state.withLock { $0.queuedCount } }

    public var isFinished: Bool { state.withLock { $0.finished } }

    // MARK: Producer side (the hub)

    enum Offer {
        case queued, skipped, overflowed, closed
    }

    /// Queues `event` if the filter wants it. `.overflowed`: the subscription has just been cut off
    /// (the hub drops it). The caller wakes the consumer afterwards, outside its own lock.
    func offer(_ event: ServiceEvent) -> Offer {
        guard filter.matches(event) else { return .skipped }
        return state.withLock { state -> Offer in
            guard state.ending == nil, !state.finished else { return .closed }
            if state.queuedCount + 1 > maxEvents || state.queuedBytes + event.frame.count > maxBytes {
                let overflow = ServiceEvent(
                    id: nil, type: EventType.streamOverflow.rawValue, atMs: event.atMs, gpu: nil, job: nil,
                    dataJSON: String(
                        decoding: JSON.encode(
                            StreamOverflowPayload(
                                queuedEvents: state.queuedCount, queuedBytes: state.queuedBytes,
                                lastId: state.lastSentId)), as: UTF8.self))
                state.queue = []
                state.queueIndex = 0
                state.queuedBytes = 0
                state.replay = nil
                state.front = [overflow.frame]
                state.frontIndex = 0
                state.ending = .overflow
                return .overflowed
            }
            state.queue.append(event)
            state.queuedBytes += event.frame.count
            return .queued
        }
    }

    /// When its `maxSeconds` runs out, if it has one and its stream has not ended yet.
    var deadline: ContinuousClock.Instant? {
        state.withLock { $0.ending == nil ? $0.deadline : nil }
    }

    /// A heartbeat tick: queues `: heartbeat` if nothing was sent for `heartbeat`, and ends the
    /// stream once its deadline has passed. Returns whether the consumer should be woken.

    func tick(now: ContinuousClock.Instant, heartbeat: Duration) -> Bool {
        state.withLock { state in
            guard state.ending == nil, !state.finished else { return false }
            if let deadline = state.deadline, now >= deadline {
                state.ending = .deadline
                return true
            }
            guard now - state.lastActivity >= heartbeat else { return false }
            state.lastActivity = now
            state.front.append(Self.heartbeat)
            return true
        }
    }

    static let heartbeat = Array(": heartbeat\n\n".utf8)

    func wakeConsumer() {
        state.withLock { $0.finished ? nil : $0.wake }?()
    }

    // MARK: StreamSource

    public func setWake(_ wake: @escaping @Sendable () -> Void) {
        state.withLock { $0.wake = wake }
    }

    /// Ends the stream after what is already buffered (the server is stopping).
    public func stop() {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.finished else { return nil }
            if state.ending == nil { state.ending = .stopped }
            return state.wake
        }
        wake?()
    }

    /// The consumer is gone: leave the hub. Idempotent.
    public func finish() {
        let first = state.withLock { state -> Bool in
            defer {
                state.finished = true
                state.wake = nil
                state.queue = []
                state.front = []
            }
            return !state.finished
        }
        if first { onFinish(id) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> StreamRead {
        while true {
            enum Step {
                case done(StreamRead)
                case fetch(after: Int64, upTo: Int64)
            }
            let step = state.withLock { state -> Step in
                if state.finished { return .done(.end) }
                var written = 0
                while written < buffer.count {
                    if state.offset < state.current.count {
                        let count = min(buffer.count - written, state.current.count - state.offset)
                        state.current.withUnsafeBytes { source in
                            UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + count])
                                .copyMemory(
                                    from: UnsafeRawBufferPointer(
                                        rebasing: source[state.offset..<state.offset + count]))
                        }
                        written += count
                        state.offset += count
                        continue
                    }
                    guard Self.loadNext(&state) else { break }
                }
                if written > 0 {
                    state.lastActivity = .now
                    return .done(.bytes(written))
                }
                if state.ending != nil { return .done(.end) }
                if let replay = state.replay { return .fetch(after: replay.cursor, upTo: replay.upTo) }
                return .done(.waiting)
            }
            switch step {
            case .done(let result):
                return result
            case .fetch(let after, let upTo):
                // The store is read outside the lock, so that the hub can keep offering meanwhile.
                let page = backlog(after, upTo, Self.replayPage)
                state.withLock { state in
                    guard let replay = state.replay, replay.cursor == after else { return }
                    let events = page.events.filter { ($0.id ?? 0) > after && ($0.id ?? 0) <= upTo }
                    state.front += events.filter(filter.matches).map(\.frame)
                    let cursor = page.complete ? upTo : (events.last?.id ?? upTo)
                    state.replay = cursor >= upTo ? nil : (cursor, upTo)
                }
            }
        }
    }

    /// Makes the next frame current: the front list first, then the live queue. False if none.
    private static func loadNext(_ state: inout State) -> Bool {
        if state.frontIndex < state.front.count {
            state.current = state.front[state.frontIndex]
            state.frontIndex += 1
            if state.frontIndex == state.front.count {
                state.front = []
                state.frontIndex = 0
            }
            state.offset = 0
            return true
        }
        // Live events wait until the replay in front of them is done.
        guard state.replay == nil, state.queueIndex < state.queue.count else { return false }
        let event = state.queue[state.queueIndex]
        state.queueIndex += 1
        state.queuedBytes -= event.frame.count
        if state.queueIndex == state.queue.count || state.queueIndex >= 1024 {
            state.queue.removeFirst(state.queueIndex)
            state.queueIndex = 0
        }
        state.current = event.frame
        state.offset = 0
        if let id = event.id { state.lastSentId = id }
        return true
    }
}
