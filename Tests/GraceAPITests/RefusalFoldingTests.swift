import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Refused requests cost their sender nothing, so the audit trail folds repeats: one line per kind
/// and minute, with the count of the rest (issue 17: an anonymous loop wrote a synced row per request).
@Suite struct RefusalFoldingTests {
    static let key = RefusalFolding.Key(
        account: "anonymous@127.0.0.1", action: "POST /gpus/{bdf}/reset", status: 401, channel: "tcp")

    @Test("the first refusal of a kind is written, the rest of its minute counted on that line")
    func foldsAWindow() {
        let folding = RefusalFolding(windowMs: 60_000)
        #expect(folding.admit(Self.key, nowMs: 0).decision == .write(Self.key))
        folding.opened(Self.key, rowId: 7)
        for at in 1...999 {
            #expect(folding.admit(Self.key, nowMs: Int64(at)).decision == .folded)
        }
        #expect(folding.closeExpired(nowMs: 59_999).isEmpty)
        #expect(folding.closeExpired(nowMs: 60_000) == [.init(rowId: 7, repeated: 999, lastAtMs: 999)])
        // A new minute: a new line.
        #expect(folding.admit(Self.key, nowMs: 61_000).decision == .write(Self.key))
        #expect(folding.openCount == 1)
    }

    @Test("a refusal after its window closes the old line's count and opens a new line")
    func nextWindowClosesThePrevious() {
        let folding = RefusalFolding(windowMs: 1000)
        _ = folding.admit(Self.key, nowMs: 0)
        folding.opened(Self.key, rowId: 1)
        _ = folding.admit(Self.key, nowMs: 10)
        // 500 ms after the last sweep (at 0): no sweep, but the key's own window is over.
        let (decision, closed) = folding.admit(Self.key, nowMs: 1500)
        #expect(decision == .write(Self.key))
        #expect(closed == [.init(rowId: 1, repeated: 1, lastAtMs: 10)])
        #expect(folding.closeAll().isEmpty, "the new window has nothing folded yet and no line")
    }

    @Test("beyond the kinds followed one by one, refusals share one overflow line")
    func overflowIsBounded() {
        let folding = RefusalFolding(windowMs: 60_000, maxOpen: 16)
        var writes = 0
        for address in 0..<10_000 {
            var key = Self.key
            key.account = "anonymous@127.0.\(address / 256).\(address % 256)"
            if case .write(let opened) = folding.admit(key, nowMs: Int64(address)).decision {
                writes += 1
                folding.opened(opened, rowId: Int64(writes))
            }
        }
        #expect(writes == 17)
        #expect(folding.openCount == 17)
        let closed = folding.closeAll()
        #expect(closed == [.init(rowId: 17, repeated: 10_000 - 17, lastAtMs: 9_999)])
    }

    @Test("an anonymous client looping on a refused POST leaves one audit line that counts them all")
    func serviceFoldsRefusals() async throws {
        let guarded = try await GuardedService.start()
        let wrong = [("Authorization", "Bearer grace_" + String(repeating: "0", count: 64))]
        for index in 0..<300 {
            let answer = try await guarded.request(
                "POST", "/gpus/0000:c3:00.0/reset", headers: index % 2 == 0 ? [] : wrong, body: "{}")
            #expect(answer.status == 401)
        }
        let trail = try await guarded.request("GET", "/audit?limit=50", headers: guarded.bearer(.admin))
        let lines = try trail.decode(AuditPage.self).items.filter { $0.status == 401 }
        // Whatever credential it presented, the caller is named by its address, and one line stands
        // for the minute's refusals (the count is written when the minute ends, or at shutdown).
        #expect(lines.count == 1)
        #expect(lines.first?.actor == "anonymous@127.0.0.1")
        #expect(lines.first?.repeated == 0 && lines.first?.lastAt == nil)

        await guarded.service.stop()
        let store = try GraceStore(path: guarded.service.databasePath)
        let refused = try store.auditEntries(limit: 50).filter { $0.detailJSON.contains(#""status":401"#) }
        #expect(refused.count == 1)
        #expect(refused.first?.detailJSON.contains(#""repeated":299"#) == true, "\(refused)")
    }
}
