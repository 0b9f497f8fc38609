import FoundationEssentials
import GraceTestSupport
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// What `GET /gpus` shows agrees with what the GPU's own probe last said, after every outcome, and
/// every change of it is one `device.state` event (issue 18).
@Suite struct TruthOfStateTests {
    static let gh200 = JobTests.gh200
    static let h100 = JobTests.h100
    static let cxl = JobTests.cxl

    struct StateChange: Decodable, Equatable {
        var from: String
        var to: String
        var reason: String
    }

    @Test(
        "a GPU that never came back stays not_ready after its reset timed out, whatever its probe kind",
        arguments: [Self.gh200, Self.h100, Self.cxl])
    func neverReadyStaysNotReady(gpu: String) async throws {
        let service = try await RunningService.start()
        try await service.setFaults(gpu, #"{"neverReady": true}"#)
        let job = try await service.submit(gpu, "reset", body: #"{"deadlineSeconds": 0.6}"#)
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "timed_out")
        #expect(try await service.gpu(gpu).state == "not_ready")
        // A full rescan and a health look do not make it ready either: only its probe could.
        try await service.refresh()
        let health = service.application.health
        await offPool { health.check() }
        #expect(try await service.gpu(gpu).state == "not_ready")
        let changes = try service.stateChanges(of: gpu)
        #expect(changes.last?.to == "not_ready", "\(changes)")
        #expect(!changes.contains { $0.to == "ready" }, "\(changes)")
        // Another reset without the fault brings it back, and says so.
        try await service.setFaults(gpu, #"{"neverReady": false}"#)
        let again = try await service.submit(gpu, "reset")
        #expect(try await service.waitForJob(again.id).state == "succeeded")
        #expect(try await service.gpu(gpu).state == "ready")
        #expect(try service.stateChanges(of: gpu).last?.to == "ready")
    }

    @Test("a reset that timed out before the GPU was ready is followed up: ready once its probe says so")
    func slowGPUIsFollowedUp() async throws {
        let service = try await RunningService.start()
        // In reset until the test lets it go: the deadline always passes first.
        try await service.setFaults(Self.gh200, #"{"heldInReset": true}"#)
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 0.3}"#)
        #expect(try await service.waitForJob(job.id).state == "timed_out")
        #expect(try await service.gpu(Self.gh200).state == "not_ready")
        try await service.setFaults(Self.gh200, #"{"heldInReset": false}"#)
        try await waitFor(seconds: 60) { try await service.gpu(Self.gh200).state == "ready" }
        let changes = try service.stateChanges(of: Self.gh200)
        #expect(changes.last?.from == "not_ready" && changes.last?.to == "ready", "\(changes)")
        #expect(changes.last?.reason.contains("follow-up") == true, "\(changes)")
    }

    @Test(
        "a reset cancelled while the GPU is in reset leaves no stale state: followed up to ready, with an event"
    )
    func cancelledResetIsFollowedUp() async throws {
        let service = try await RunningService.start()
        // The device stays in reset until the test lets it go: the cancel always lands in the window.
        try await service.setFaults(Self.h100, #"{"heldInReset": true}"#)
        let job = try await service.submit(Self.h100, "reset")
        _ = try await service.waitForJob(job.id, until: { $0.phase == "waiting_ready" })
        #expect(try await service.send("DELETE", "/jobs/\(job.id)?wait=10").status == 202)
        #expect(try await service.waitForJob(job.id).state == "cancelled")
        #expect(try await service.gpu(Self.h100).state == "not_ready")
        try await service.setFaults(Self.h100, #"{"heldInReset": false}"#)
        try await waitFor(seconds: 60) { try await service.gpu(Self.h100).state == "ready" }
        let changes = try service.stateChanges(of: Self.h100)
        #expect(changes.last?.to == "ready", "\(changes)")
        // Each change follows the one before: no event starts from a state that was not shown.
        for (before, after) in zip(changes, changes.dropFirst()) {
            #expect(before.to == after.from, "\(changes)")
        }
    }

    @Test("a GPU that vanishes on reset ends in a device.state event to missing")
    func vanishedIsMissing() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.h100, #"{"vanishOnReset": true}"#)
        let job = try await service.submit(Self.h100, "reset")
        #expect(try await service.waitForJob(job.id).state == "failed")
        #expect(try await service.gpu(Self.h100).state == "missing")
        let changes = try service.stateChanges(of: Self.h100)
        #expect(changes.map(\.to) == ["resetting", "missing"], "\(changes)")
        #expect(changes.first?.from == "ready")
    }

    @Test(
        "a write that hung and returned late completes its attempt, and the GPU is re-probed, not assumed ready"
    )
    func lateReturnIsRecorded() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"holdResetWrite": true}"#)
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 0.5}"#)
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "timed_out")
        #expect(done.attempts.last?.returnedAt == nil)
        #expect(try await service.gpu(Self.gh200).state == "wedged")
        // The kernel lets the write go: the attempt gets its return, the GPU its probe's verdict.
        try await service.setFaults(Self.gh200, #"{"holdResetWrite": false}"#)
        let returned = try await service.waitForJob(job.id, timeout: .seconds(60)) {
            $0.attempts.last?.returnedAt != nil
        }
        #expect(returned.attempts.last?.message.contains("returned after the deadline") == true)
        try await waitFor(seconds: 60) { try await service.gpu(Self.gh200).state == "ready" }
        let attempts = try service.storedEvents().filter { $0.type == "job.attempt" && $0.job == job.id }
        #expect(attempts.count >= 2, "\(attempts)")
        let changes = try service.stateChanges(of: Self.gh200)
        #expect(changes.contains { $0.from == "wedged" && $0.to == "not_ready" }, "\(changes)")
        #expect(changes.last?.to == "ready", "\(changes)")
    }

    @Test(
        "an Idempotency-Key reused with another body is 422 naming its job; the same body, spaced otherwise, is the same job"
    )
    func idempotencyKeyWithAnotherBody() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.h100, #"{"heldInReset": true}"#)
        let key = [("Idempotency-Key", "vm-42-reset")]
        let first = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", body: #"{"deadlineSeconds": 20}"#, headers: key)
        #expect(first.status == 202)
        let job = try first.decode(JobView.self)
        let same = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", body: #"{ "deadlineSeconds" : 20.0 }"#, headers: key)
        #expect(same.status == 202)
        #expect(try same.decode(JobView.self).id == job.id)
        let other = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", body: #"{"deadlineSeconds": 30}"#, headers: key)
        #expect(other.status == 422)
        #expect(other.text.contains("idempotency-key-reused") && other.text.contains(job.id), "\(other.text)")
        try await service.setFaults(Self.h100, #"{"heldInReset": false}"#)
        #expect(try await service.waitForJob(job.id).state == "succeeded")
    }

    @Test("a job interrupted by a crash finishes in the stream and the audit trail, its phases closed")
    func interruptedJobFinishes() async throws {
        let first = try await RunningService.start(removesHost: false)
        let job = try await first.submit(Self.h100, "reset")
        _ = try await first.waitForJob(job.id)
        let path = first.databasePath
        let host = first.simulated
        await first.stop()
        // As a daemon killed mid-job leaves it: the record says running, in its waiting_ready phase.
        let store = try GraceStore(path: path)
        let running = try #require(try store.job(id: job.id))
        var record = running
        record.id = "11111111-2222-4333-8444-555555555555"
        record.idempotencyKey = nil
        record.state = "running"
        record.phase = "waiting_ready"
        record.finishedAtMs = nil
        record.phases = [JobPhase(seq: 1, name: "waiting_ready", startedAtMs: running.createdAtMs)]
        try store.insertJob(record)

        let second = try await RunningService.start(databasePath: path, host: host)
        let interrupted = try await second.waitForJob(record.id)
        #expect(interrupted.state == "interrupted")
        #expect(interrupted.phase == "interrupted")
        #expect(interrupted.phases.allSatisfy { $0.endedAt != nil }, "\(interrupted.phases)")
        let finished = try second.storedEvents().filter { $0.type == "job.finished" && $0.job == record.id }
        #expect(finished.count == 1)
        let audit = try GraceStore(path: path).auditEntries(limit: 50)
        #expect(
            audit.contains {
                $0.actor == "graced" && $0.action == "job.reset" && $0.detailJSON.contains(record.id)
            })
    }
}

/// Polls `condition` until it holds; the deadline only guards against a hang.
func waitFor(seconds: Int, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(seconds) s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension RunningService {
    /// Every event in the store, oldest first.
    func storedEvents() throws -> [EventRecord] {
        try GraceStore(path: databasePath).events(after: 0, limit: 100_000)
    }

    /// The `device.state` events of one GPU, oldest first.
    func stateChanges(of gpu: String) throws -> [TruthOfStateTests.StateChange] {
        try storedEvents().filter { $0.type == "device.state" && $0.gpu == gpu }.map {
            try JSON.decode(TruthOfStateTests.StateChange.self, from: Array($0.dataJSON.utf8))
        }
    }
}

/// `maxSeconds` ends a stream at its deadline (issue 18: it ended up to a tick, a second, later).
@Suite struct EventDeadlineTests {
    @Test("the ticker wakes at the soonest stream deadline, never later than its interval")
    func tickerWakesAtDeadlines() {
        let now = ContinuousClock.now
        let second = Duration.seconds(1)
        #expect(EventHub.tickerWait(interval: second, now: now, deadlines: []) == second)
        #expect(
            EventHub.tickerWait(
                interval: second, now: now, deadlines: [now + .milliseconds(250), now + .seconds(5)])
                == .milliseconds(250))
        #expect(EventHub.tickerWait(interval: second, now: now, deadlines: [now + .seconds(3)]) == second)
        #expect(EventHub.tickerWait(interval: second, now: now, deadlines: [now - .seconds(1)]) == .zero)
    }
}
