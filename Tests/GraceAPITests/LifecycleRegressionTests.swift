import FoundationEssentials
import GraceSimulation
import GraceTestSupport
import Logging
import Passthrough
import PassthroughSimulator
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// The bugs a new user met before jobs and devices had one state machine each; every test here failed
/// on the engine that kept a job's truth in six places.
@Suite("Lifecycle regressions", .serialized)
struct LifecycleRegressionTests {
    static let gh200 = "0009:01:00.0"
    static let h100 = "0000:c3:00.0"
    static let cxl = "0008:01:00.0"

    struct Health: Decodable {
        struct Store: Decodable {
            var status: String
            var pendingJobRecords: Int
            var lastError: String?
        }
        struct Jobs: Decodable {
            var runningJobs: Int
            var accepting: Bool
        }
        var status: String
        var store: Store
        var jobs: Jobs
    }

    @Test(
        "during shutdown a new job gets 503 with Retry-After (never 202 and a queue with no worker); reads still answer"
    )
    func shutdownRefusesNewJobs() async throws {
        let service = try await RunningService.start()
        // A reset write held in the kernel keeps the shutdown waiting for its worker until the test
        // lets it go: the server answers meanwhile, however long the requests below take.
        let kernel = service.simulated.kernel
        let gpu = try #require(BDF(Self.gh200))
        try kernel.holdResetWrites(gpu)
        _ = try await service.submit(Self.gh200, "reset")
        try await waitUntil { kernel.heldResetWrites(gpu) == 1 }
        let application = service.application
        // Stopping blocks (it waits for the worker): on a thread of its own, not the test's pool.
        let stopping = Task { await offPool { application.stop() } }
        try await waitUntil { try await service.get("/healthz").decode(Health.self).jobs.accepting == false }
        // Not ready from the moment jobs are refused, so a cluster sends no more work.
        let notReady = try await service.get("/readyz")
        #expect(notReady.status == 503)
        #expect(try notReady.decode(ProbeBody.self).reason == "shutting down")

        let refused = try await service.send("POST", "/gpus/\(Self.h100)/reset", body: "{}")
        #expect(refused.status == 503)
        #expect(try refused.problem().type.hasSuffix("/shutting-down"))
        #expect(refused.header("Retry-After") == "5")
        #expect(try await service.get("/gpus").status == 200)
        kernel.releaseResetWrites(gpu)
        await stopping.value

        // Nothing was left queued for a restart to call interrupted.
        let store = try GraceStore(path: service.databasePath)
        let unfinished = try store.jobs(limit: 50).filter { ["queued", "running"].contains($0.state) }
        #expect(unfinished.isEmpty, "\(unfinished.map { "\($0.id) \($0.state)" })")
        #expect(try store.jobs(limit: 50).count == 1)
    }

    @Test("cancelling a queued job answers at once; its cleanup runs on another thread than the caller's")
    func cancelQueuedOffTheCallersThread() async throws {
        let simulated = try SimulatedHost.createTemporary(prefix: "graceapi-cancelq")
        defer { try? simulated.removeFiles() }
        let host = ServiceHost.simulated(simulated)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try GraceStore(path: ":memory:")
        let inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        try inventory.refresh()
        let concludedOn = GuardedValue<[String: pthread_t]>([:])
        var observers = JobEngine.Observers()
        observers.jobConcluded = { job in concludedOn.withLock { $0[job.id] = pthread_self() } }
        let engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: .init(workers: 1), logger: logger,
            observers: observers)
        engine.start()

        // The only worker stays busy with a GPU that waits until its job's deadline (a CXL device
        // that never shows Memory_Info_Valid fails after 1 s, which a loaded machine can use up).
        try simulated.kernel.setFaults(SimulatorFaults(neverReady: true), for: BDF(Self.gh200)!)
        guard
            case .accepted(let busy) = engine.submitReset(
                BDF(Self.gh200)!, ResetRequest(method: nil, deadlineSeconds: 600, dryRun: nil),
                idempotencyKey: nil, requestedBy: "test")
        else { Issue.record("the first reset was not accepted"); return }
        try await waitUntil { engine.job(busy.id)?.phase == "waiting_ready" }
        guard
            case .accepted(let queued) = engine.submitReset(
                BDF(Self.h100)!, ResetRequest(method: nil, deadlineSeconds: nil, dryRun: nil),
                idempotencyKey: nil, requestedBy: "test")
        else { Issue.record("the second reset was not accepted"); return }
        #expect(engine.job(queued.id)?.state == .queued)

        let caller = pthread_self()
        guard case .accepted(let cancelled) = engine.cancel(queued.id, reason: "test") else {
            Issue.record("the cancel was not accepted")
            return
        }
        #expect(cancelled.state == .cancelled)
        try await waitUntil { concludedOn.withLock { $0[queued.id] != nil } }
        let thread = try #require(concludedOn.withLock { $0[queued.id] })
        #expect(pthread_equal(thread, caller) == 0)
        // The GPU is free again for a new job.
        guard
            case .accepted = engine.submitReset(
                BDF(Self.h100)!, ResetRequest(method: nil, deadlineSeconds: nil, dryRun: nil),
                idempotencyKey: nil, requestedBy: "test")
        else { Issue.record("the GPU stayed claimed after the cancel"); return }
        await offPool { engine.shutdown(grace: .seconds(2)) }
    }

    @Test(
        "one Idempotency-Key sent at the same moment to two GPUs creates exactly one job; the other request is told whose key it is"
    )
    func idempotencyKeyRace() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"readyAfterMs": 0}"#)
        try await service.setFaults(Self.h100, #"{"readyAfterMs": 0}"#)
        for round in 0..<60 {
            let key = "race-\(round)"
            async let first = service.send(
                "POST", "/gpus/\(Self.gh200)/reset", body: "{}", headers: [("Idempotency-Key", key)])
            async let second = service.send(
                "POST", "/gpus/\(Self.h100)/reset", body: "{}", headers: [("Idempotency-Key", key)])
            let answers = try await [first, second]
            let accepted = answers.filter { $0.status == 202 }
            #expect(
                accepted.count == 1,
                "round \(round): \(answers.map { "\($0.status) \($0.text.prefix(200))" })")
            guard let winner = try accepted.first?.decode(JobView.self) else { continue }
            let loser = try #require(answers.first { $0.status != 202 })
            #expect(
                loser.status == 422 && loser.text.contains(winner.id),
                "round \(round): \(loser.status) \(loser.text.prefix(300))")
            _ = try await service.get("/jobs/\(winner.id)?wait=10")
        }
        let store = try GraceStore(path: service.databasePath)
        let jobs = try store.jobs(limit: 500)
        #expect(jobs.count == 60)
        #expect(Set(jobs.compactMap(\.idempotencyKey)).count == 60)
    }

    @Test(
        "a full disk in the middle of a job: the job shows its real outcome, the store is degraded and new jobs get 503; the record catches up when space returns"
    )
    func fullDisk() async throws {
        let mountPoint = "/tmp/graceapi-fulldisk-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(mountPoint, 0o700) == 0)
        let mounted = try ChildProcess.run(
            ["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint], in: "/tmp")
        try #require(
            mounted.status == 0,
            "mounting a tmpfs needs root (the suite runs as root in CI): \(mounted.output)")
        defer {
            _ = try? ChildProcess.run(["/bin/umount", "-l", mountPoint], in: "/tmp")
            rmdir(mountPoint)
        }
        // The audit trail lives elsewhere, so that the engine's own refusal is what the client sees.
        var server = RunningService.openLoopback()
        server.edge.auditor = StoreAuditor(
            store: try GraceStore(path: ":memory:"), logger: Logger(label: "audit"))
        var jobs = JobEngine.Configuration()
        jobs.recordRetryInterval = .milliseconds(100)
        let service = try await RunningService.start(
            databasePath: mountPoint + "/graced.sqlite", server: server, jobs: jobs)
        // The GPU's return from the reset waits until the disk is full, so the job ends after that.
        try await service.setFaults(Self.gh200, #"{"readyAfterMs": 50}"#)
        let kernel = service.simulated.kernel
        let gpu = try #require(BDF(Self.gh200))
        try kernel.holdReadiness(gpu)
        let job = try await service.submit(Self.gh200, "reset")
        _ = try await service.waitForJob(job.id) { $0.phase == "waiting_ready" }

        // Fill the filesystem.
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        try #require(fd >= 0)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        kernel.releaseReadiness(gpu)

        let done = try await service.waitForJob(job.id)
        #expect(done.state == "succeeded" && done.phase == "succeeded")
        let degraded = try await service.get("/healthz").decode(Health.self)
        #expect(degraded.status == "degraded" && degraded.store.status == "degraded")
        #expect(degraded.store.pendingJobRecords >= 1 && degraded.store.lastError != nil)
        let notReady = try await service.get("/readyz")
        #expect(notReady.status == 503)
        #expect(
            try notReady.decode(ProbeBody.self)
                == ProbeBody(status: "not_ready", reason: "store not writable"))
        #expect(degraded.jobs.runningJobs == 0)
        let listed = try await service.get("/jobs").decode(JobPage.self)
        #expect(listed.items.first { $0.id == job.id }?.state == "succeeded")
        // Its record still says running: a filter on state goes by the state it has now.
        let succeeded = try await service.get("/jobs?state=succeeded").decode(JobPage.self)
        #expect(succeeded.items.map(\.id).contains(job.id))
        let running = try await service.get("/jobs?state=running").decode(JobPage.self)
        #expect(!running.items.map(\.id).contains(job.id))
        let refused = try await service.send("POST", "/gpus/\(Self.gh200)/reset", body: "{}")
        let problem = try refused.problem()
        #expect(refused.status == 503 && problem.type.hasSuffix("/store-degraded"))

        // Space again: the record catches up, and only the truth reached the disk.
        #expect(unlink(filler) == 0)
        try await waitUntil { try await service.get("/healthz").decode(Health.self).store.status == "ok" }
        #expect(try await service.get("/readyz").status == 200)
        let stored = try #require(try GraceStore(path: mountPoint + "/graced.sqlite").job(id: job.id))
        #expect(stored.state == "succeeded" && stored.phase == "succeeded" && stored.finishedAtMs != nil)
        #expect(try await service.send("POST", "/gpus/\(Self.gh200)/reset", body: "{}").status == 202)
    }
}
