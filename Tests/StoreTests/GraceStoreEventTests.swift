import Testing

@testable import Store

@Suite struct GraceStoreEventTests {
    private func append(
        _ store: GraceStore, _ type: String = "job.queued", atMs: Int64 = 1_000, atLeast: Int64 = 0
    )
        throws -> Int64
    {
        try store.appendEvent(
            type: type, atMs: atMs, gpu: "0000:0a:00.0", job: nil, dataJSON: #"{"n":1}"#, atLeast: atLeast)
    }

    @Test func idsIncreaseAndReadBackInOrder() throws {
        let store = try GraceStore(path: ":memory:")
        #expect(try store.lastEventId() == 0)
        #expect(try store.oldestEventId() == nil)
        let first = try append(store)
        let second = try append(store, "job.phase")
        #expect(second > first)
        let events = try store.events(after: 0, limit: 10)
        #expect(events.map(\.id) == [first, second])
        #expect(events[1].type == "job.phase" && events[1].gpu == "0000:0a:00.0" && events[1].job == nil)
        #expect(events[1].dataJSON == #"{"n":1}"#)
        #expect(try store.events(after: first, limit: 10).map(\.id) == [second])
        #expect(try store.events(after: 0, limit: 1).map(\.id) == [first])
        #expect(try store.lastEventId() == second)
    }

    @Test func prunedIdsAreNeverHandedOutAgain() throws {
        let store = try GraceStore(path: ":memory:")
        _ = try append(store, atMs: 10)
        let last = try append(store, atMs: 20)
        #expect(try store.pruneEvents(olderThanMs: 100, keepingAtMost: 10) == 2)
        #expect(try store.oldestEventId() == nil)
        #expect(try store.lastEventId() == last)
        #expect(try append(store, atMs: 200) == last + 1)
    }

    @Test func aFloorAboveTheSequenceMovesIt() throws {
        let store = try GraceStore(path: ":memory:")
        let first = try append(store)
        // The hub numbered events itself while the store failed; the next stored id follows them.
        let floored = try append(store, atLeast: first + 5)
        #expect(floored == first + 5)
        #expect(try append(store) == first + 6)
        // A floor below the sequence changes nothing.
        #expect(try append(store, atLeast: 1) == first + 7)
    }

    @Test func pruneKeepsTheNewestWithinTheCountAndAge() throws {
        let store = try GraceStore(path: ":memory:")
        var ids: [Int64] = []
        for at in 1...6 { ids.append(try append(store, atMs: Int64(at) * 100)) }
        // Older than 250 ms: the first two; then at most 3 of the remaining 4.
        #expect(try store.pruneEvents(olderThanMs: 250, keepingAtMost: 3) == 3)
        #expect(try store.events(after: 0, limit: 10).map(\.id) == Array(ids.suffix(3)))
        #expect(try store.oldestEventId() == ids[3])
        #expect(try store.pruneEvents(olderThanMs: 0, keepingAtMost: 3) == 0)
    }
}
