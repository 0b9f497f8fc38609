import FoundationEssentials
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// `GET` and `DELETE /jobs/{id}?wait=SECONDS`: answered when the job ends, from the suspended path.
@Suite("Waiting for jobs", .serialized)
struct JobWaitTests {
    static let gh200 = "0009:01:00.0"

    @Test("one GET with ?wait= answers when the job has ended")
    func waitsForTheEnd() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"readyAfterMs": 400}"#)
        let job = try await service.submit(Self.gh200, "reset")
        let started = ContinuousClock.now
        let answer = try await service.get("/jobs/\(job.id)?wait=20")
        #expect(answer.status == 200)
        let done = try answer.decode(JobView.self)
        #expect(done.state == "succeeded")
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(service.application.engine.waiters.count == 0)
    }

    @Test("at the end of the wait the job is answered as it is; bad values are 400")
    func waitEnds() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(Self.gh200, "reset")
        let answer = try await service.get("/jobs/\(job.id)?wait=1")
        #expect(answer.status == 200)
        let current = try answer.decode(JobView.self)
        #expect(["queued", "running"].contains(current.state), "\(current.state) \(current.phase)")
        #expect(service.application.engine.waiters.count == 0)
        for bad in ["0", "301", "1.5", "-1", "abc", ""] {
            let refused = try await service.get("/jobs/\(job.id)?wait=\(bad)")
            #expect(refused.status == 400, "wait=\(bad)")
        }
        #expect(try await service.get("/jobs/no-such-job?wait=5").status == 404)
    }

    @Test("DELETE with ?wait= answers with the job cancelled")
    func cancelAndWait() async throws {
        let service = try await RunningService.start()
        // A GPU whose wait lasts until the job's deadline (a CXL device that never shows
        // Memory_Info_Valid fails after 1 s, which can pass before the DELETE on a loaded machine).
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 600}"#)
        _ = try await service.waitForJob(job.id) { $0.phase == "waiting_ready" }
        let answer = try await service.send("DELETE", "/jobs/\(job.id)?wait=10")
        #expect(answer.status == 202)
        #expect(try answer.decode(JobView.self).state == "cancelled")
    }

    @Test("many clients waiting hold no server thread: reads still answer")
    func waitersHoldNoThread() async throws {
        let service = try await RunningService.start()
        // The job waits until its deadline, so it is still running when the DELETE comes.
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 600}"#)
        let waiting = (0..<24).map { _ in
            Task { try await service.get("/jobs/\(job.id)?wait=30") }
        }
        try await waitUntil { service.application.engine.waiters.count == 24 }
        #expect(try await service.get("/gpus").status == 200)
        #expect(try await service.send("DELETE", "/jobs/\(job.id)").status == 202)
        for task in waiting {
            let answer = try await task.value
            #expect(try answer.decode(JobView.self).state == "cancelled")
        }
    }
}
