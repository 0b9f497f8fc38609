import FoundationEssentials
import GraceTestSupport
import Logging
import Store
import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// What a consumer of a subscription receives, read the way the HTTP layer reads it.
private struct Drained {
    var text = ""
    var ended = false

    var events: [(id: Int64?, type: String, data: String)] {
        text.split(separator: "\n\n").compactMap { block in
            var id: Int64?
            var type = ""
            var data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            return type.isEmpty ? nil : (id, type, data)
        }
    }
    var ids: [Int64] { events.compactMap(\.id) }
    var types: [String] { events.map(\.type) }
}

/// Reads everything available now, in small pieces so frames are split across reads.
private func drain(_ subscription: EventSubscription, piece: Int = 7) -> Drained {
    var drained = Drained()
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: piece)
    loop: while true {
        let result = buffer.withUnsafeMutableBytes { subscription.read(into: $0) }
        switch result {
        case .bytes(let count): bytes += buffer[..<count]
        case .waiting: break loop
        case .end:
            drained.ended = true
            break loop
        }
    }
    drained.text = String(decoding: bytes, as: UTF8.self)
    return drained
}

private struct Note: Encodable {
    var n: Int
}

private func makeHub(
    _ store: GraceStore? = nil, ring: Int = 4096, maxEvents: Int = 1024, heartbeat: Duration = .seconds(15),
    clock: @escaping @Sendable () -> Int64 = { WallClock.nowMs() }
) throws -> (EventHub, GraceStore) {
    let store = try store ?? GraceStore(path: ":memory:")
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let hub = EventHub(
        store: store,
        configuration: .init(ringCapacity: ring, subscriberMaxEvents: maxEvents, heartbeat: heartbeat),
        logger: logger, clock: clock)
    return (hub, store)
}

@Suite struct EventHubTests {
    @Test func eventsAreStoredNumberedAndDelivered() throws {
        let (hub, store) = try makeHub()
        let subscription = hub.subscribe()
        let first = hub.publish(type: .jobQueued, gpu: "0000:0a:00.0", job: "j1", payload: Note(n: 1))
        let second = hub.publish(type: .jobPhase, job: "j1", payload: Note(n: 2))
        #expect(try #require(second.id) > (try #require(first.id)))
        #expect(try store.events(after: 0, limit: 10).map(\.id) == [first.id, second.id])
        let drained = drain(subscription)
        #expect(drained.text.hasPrefix(": graced events\nretry: 3000\n\n"))
        #expect(drained.ids == [first.id, second.id])
        #expect(drained.types == ["job.queued", "job.phase"])
        let decoded = try JSONDecoder().decode(
            EventBody.self, from: Data(drained.events[0].data.utf8))
        #expect(decoded.id == first.id && decoded.gpu == "0000:0a:00.0" && decoded.job == "j1")
        #expect(decoded.data == ["n": 1] && decoded.type == "job.queued" && decoded.at.hasSuffix("Z"))
        #expect(!drained.ended)
    }

    @Test func filtersByGPUAndType() throws {
        let (hub, _) = try makeHub()
        let byGPU = hub.subscribe(filter: EventFilter(gpu: "0000:0a:00.0"))
        let byType = hub.subscribe(filter: EventFilter(types: ["inventory.removed", "job.finished"]))
        hub.publish(type: .jobQueued, gpu: "0000:0a:00.0", payload: Note(n: 1))
        hub.publish(type: .inventoryRemoved, gpu: "0000:0b:00.0", payload: Note(n: 2))
        hub.publish(type: .jobFinished, gpu: "0000:0a:00.0", payload: Note(n: 3))
        #expect(drain(byGPU).types == ["job.queued", "job.finished"])
        #expect(drain(byType).types == ["inventory.removed", "job.finished"])
    }

    @Test(arguments: [4096, 2])
    func resumeHasNoGapAndNoDuplicate(ring: Int) throws {
        // With a ring of 2 the resume point is older than the ring and comes from the store.
        let (hub, _) = try makeHub(ring: ring)
        let ids = (1...5).map { hub.publish(type: .jobPhase, payload: Note(n: $0)).id! }
        let resumed = hub.subscribe(after: ids[1])
        let live = hub.publish(type: .jobPhase, payload: Note(n: 6)).id!
        #expect(drain(resumed).ids == Array(ids[2...]) + [live])
        // Resuming at the newest id replays nothing; filters apply to the replay too.
        #expect(drain(hub.subscribe(after: live)).ids == [])
        let filtered = hub.subscribe(after: ids[0], filter: EventFilter(types: ["job.queued"]))
        let queued = hub.publish(type: .jobQueued, payload: Note(n: 7)).id!
        #expect(drain(filtered).ids == [queued])
    }

    @Test func aPrunedResumePointStartsWithStreamDropped() throws {
        let now = Atomic<Int64>(1_000)
        let (hub, store) = try makeHub(ring: 2) { now.load(ordering: .relaxed) }
        let old = (1...4).map { hub.publish(type: .jobPhase, payload: Note(n: $0)).id! }
        now.store(1_000 + 25 * 3_600_000, ordering: .relaxed)
        let kept = hub.publish(type: .jobPhase, payload: Note(n: 5)).id!
        #expect(hub.prune() == 4)
        #expect(try store.oldestEventId() == kept)
        let resumed = hub.subscribe(after: old[0])
        let drained = drain(resumed)
        #expect(drained.types.first == "stream.dropped")
        #expect(drained.events.first?.id == nil)
        #expect(drained.ids == [old[3], kept])  // the ring still had the newest two
        let dropped = try JSONDecoder().decode(
            EventBody.self, from: Data(drained.events[0].data.utf8))
        #expect(dropped.data == ["requestedAfter": old[0], "resumesFrom": old[3]])
    }

    /// A resume point above every id given (the database was replaced, or the id is made up) cannot
    /// be honoured: the client is told with `stream.dropped`, then gets the live events.
    @Test func anUnknownResumePointStartsWithStreamDropped() throws {
        let (hub, _) = try makeHub()
        let ids = (1...3).map { hub.publish(type: .jobPhase, payload: Note(n: $0)).id! }
        let resumed = hub.subscribe(after: ids[2] + 1000)
        let live = hub.publish(type: .jobPhase, payload: Note(n: 4)).id!
        let drained = drain(resumed)
        #expect(drained.types.first == "stream.dropped")
        #expect(drained.ids == [live])
        let dropped = try JSONDecoder().decode(EventBody.self, from: Data(drained.events[0].data.utf8))
        #expect(dropped.data == ["requestedAfter": ids[2] + 1000, "resumesFrom": ids[2] + 1])
    }

    @Test func aSlowSubscriberIsCutOffWhileOthersCarryOn() throws {
        let (hub, _) = try makeHub(maxEvents: 3)
        let slow = hub.subscribe()
        let fast = hub.subscribe()
        var ids: [Int64] = []
        var fastSeen: [Int64] = []
        for n in 1...6 {
            ids.append(hub.publish(type: .jobAttempt, payload: Note(n: n)).id!)
            fastSeen += drain(fast).ids
            if n == 1 { _ = drain(slow) }  // it took the first, then stopped reading
        }
        #expect(fastSeen == ids)
        let cutOff = drain(slow)
        #expect(cutOff.types == ["stream.overflow"])
        #expect(cutOff.ended)
        let payload = try JSONDecoder().decode(EventBody.self, from: Data(cutOff.events[0].data.utf8))
        #expect(
            payload.data == [
                "queuedEvents": 3, "queuedBytes": payload.data["queuedBytes"]!, "lastId": ids[0],
            ])
        #expect(hub.subscriberCount == 1)
        // Resuming with the last id it received loses nothing.
        #expect(drain(hub.subscribe(after: ids[0])).ids == Array(ids[1...]))
    }

    @Test func aStoreFailureKeepsIdsIncreasingAndHealsItself() throws {
        let folder = try TemporaryFolder()
        let store = try GraceStore(path: folder.path + "/events.sqlite")
        let (hub, _) = try makeHub(store)
        let subscription = hub.subscribe()
        let before = hub.publish(type: .jobQueued, payload: Note(n: 1)).id!
        try store.database.execute("ALTER TABLE events RENAME TO events_away")
        let during = (2...3).map { hub.publish(type: .jobPhase, payload: Note(n: $0)).id! }
        #expect(hub.isDegraded)
        #expect(during == [before + 1, before + 2])
        try store.database.execute("ALTER TABLE events_away RENAME TO events")
        let after = hub.publish(type: .jobFinished, payload: Note(n: 4)).id!
        #expect(!hub.isDegraded)
        #expect(after == before + 3)
        #expect(drain(subscription).ids == [before] + during + [after])
        // The events kept in memory reached the store under the ids the clients saw.
        #expect(try store.events(after: 0, limit: 10).map(\.id) == [before] + during + [after])
        // A hub started later on the same store continues above them.
        let (again, _) = try makeHub(store)
        #expect(again.publish(type: .jobQueued, payload: Note(n: 5)).id == after + 1)
    }

    /// A resume is served every event after its `Last-Event-ID`, or told by `stream.dropped` from
    /// which id it goes on; never a silent gap.
    private static func expectNoSilentGap(
        _ drained: Drained, after: Int64, through last: Int64, _ comment: Comment
    ) throws {
        if drained.types.first == "stream.dropped" {
            let payload = try JSONDecoder().decode(EventBody.self, from: Data(drained.events[0].data.utf8))
                .data
            let from = try #require(payload["resumesFrom"])
            #expect(payload["requestedAfter"] == after, comment)
            #expect(drained.ids == Array(from...last), comment)
        } else {
            #expect(drained.ids == Array((after + 1)...last), comment)
        }
    }

    @Test func eventsDroppedWhileTheStoreFailsAreNeverASilentGapForAResume() throws {
        let folder = try TemporaryFolder()
        let store = try GraceStore(path: folder.path + "/events.sqlite")
        let ring = 4
        let (hub, _) = try makeHub(store, ring: ring)
        let before = hub.publish(type: .jobQueued, payload: Note(n: 0)).id!
        try store.database.execute("ALTER TABLE events RENAME TO events_away")
        // More than the ring's worth while nothing can be stored.
        let during = (1...(3 * ring)).map { hub.publish(type: .jobPhase, payload: Note(n: $0)).id! }
        #expect(hub.isDegraded)
        try store.database.execute("ALTER TABLE events_away RENAME TO events")
        // Resumed while the kept events still wait for the store (it reads again, nothing wrote yet).
        try Self.expectNoSilentGap(
            drain(hub.subscribe(after: before)), after: before, through: during.last!,
            "before the store took them")
        // Resumed after the store took what the hub still had.
        let healed = hub.publish(type: .jobFinished, payload: Note(n: 99)).id!
        #expect(!hub.isDegraded)
        try Self.expectNoSilentGap(
            drain(hub.subscribe(after: before)), after: before, through: healed, "after the store took them")
        // A resume point after the dropped ones loses nothing and is told nothing.
        let kept = during[during.count - ring]
        #expect(
            drain(hub.subscribe(after: kept)).ids == Array(during[(during.count - ring + 1)...]) + [healed])
    }

    @Test func heartbeatsGoToIdleSubscribersAndDeadlinesEndStreams() async throws {
        let (hub, _) = try makeHub(heartbeat: .zero)
        let idle = hub.subscribe()
        let bounded = hub.subscribe(maxSeconds: 1)
        _ = drain(idle)
        hub.tick()
        #expect(drain(idle).text == ": heartbeat\n\n")
        // The deadline is a second away; the tick that finds it passed ends the stream.
        _ = drain(bounded)
        // Waiting blocks, so off Swift's pool (whose threads other tests' servers need).
        let ended = await offPool { () -> Bool in
            for _ in 0..<60 {
                usleep(50_000)
                hub.tick()
                if drain(bounded).ended { return true }
            }
            return false
        }
        #expect(ended)
    }

    @Test func finishingReleasesTheSubscriptionAndStopEndsStreams() throws {
        let (hub, _) = try makeHub()
        let gone = hub.subscribe()
        let open = hub.subscribe()
        #expect(hub.subscriberCount == 2)
        gone.finish()
        #expect(hub.subscriberCount == 1)
        let woken = Atomic<Int>(0)
        open.setWake { woken.add(1, ordering: .relaxed) }
        hub.publish(type: .jobQueued, payload: Note(n: 1))
        #expect(woken.load(ordering: .relaxed) == 1)
        hub.stop()
        let last = drain(open)
        #expect(last.types == ["job.queued"] && last.ended)
    }
}

/// An event's JSON as clients decode it (integer payloads only, enough for these tests).
struct EventBody: Decodable {
    var id: Int64?
    var type: String
    var at: String
    var gpu: String?
    var job: String?
    var data: [String: Int64]
}

/// A folder removed when the value goes away.
final class TemporaryFolder {
    let path: String
    init() throws {
        path = makeTemporaryFolder("/tmp/graceapi-events-XXXXXX")
    }
    deinit {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}
