import FoundationEssentials
import GraceTestSupport
import Passthrough
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// The job engine through the HTTP API, on the simulated host.
@Suite("Jobs", .serialized)
struct JobTests {
    /// GPUs of the demo host that sit on VFIO drivers, one per probe kind.
    static let cxl = "0008:01:00.0"
    static let gh200 = "0009:01:00.0"
    static let h100 = "0000:c3:00.0"

    @Test(
        "a reset succeeds for each probe kind, after the device's not-ready window",
        arguments: [(cxl, "cxl-dvsec"), (gh200, "nvgrace-bar0"), (h100, "pci")])
    func resetSucceeds(_ gpu: String, _ probe: String) async throws {
        let service = try await RunningService.start()
        try await service.setFaults(gpu, #"{"readyAfterMs": 300}"#)
        let job = try await service.submit(gpu, "reset")
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        #expect(done.readiness?.probe == probe)
        // The device comes back 300 ms after the reset write began (recorded just before it was
        // issued); the wait can only have ended, and verifying begun, after that. (The wait's own
        // waitedMs counts from when the worker got to it, which a loaded machine delays.)
        let recorded = try #require(service.application.engine.job(job.id))
        let write = try #require(recorded.attempts.last { $0.message.contains("/reset <- ") })
        let verifying = try #require(recorded.phases.first { $0.name == "verifying" })
        #expect(verifying.startedAtMs - write.atMs >= 299, "\(verifying.startedAtMs - write.atMs) ms")
        #expect(done.method.used != nil)
        #expect(
            done.phases.map(\.name) == [
                "queued", "quiescing", "resetting", "waiting_ready", "verifying", "succeeded",
            ])
        #expect(try await service.gpu(gpu).state == "ready")
    }

    @Test("a device that never becomes ready ends timed_out at the deadline, not before and not long after")
    func neverReady() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        // The deadline is the job's, from its submission: it must leave the stages before the wait
        // (quiescing, the reset write) their time even on a loaded machine, where 0.6 s did not.
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 3}"#)
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "timed_out")
        #expect(
            done.error?.errno == nil && done.error?.errnoName == nil, "a deadline is not a kernel refusal")
        // The wait began only after the reset write, later still on a loaded machine, so its end is
        // measured against the deadline itself.
        let recorded = try #require(service.application.engine.job(job.id))
        let waiting = try #require(recorded.phases.first { $0.name == "waiting_ready" })
        let ended = try #require(waiting.endedAtMs)
        let late = ended - recorded.details.deadlineMs
        #expect(late >= -1 && late <= 250, "the wait ended \(late) ms after the deadline")
    }

    @Test("DELETE stops a poll at once; a second DELETE is 409")
    func cancelMidPoll() async throws {
        let service = try await RunningService.start()
        // A GPU whose wait lasts until the job's deadline (a CXL device that never shows
        // Memory_Info_Valid fails after 1 s, which can pass before the DELETE on a loaded machine).
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(Self.gh200, "reset", body: #"{"deadlineSeconds": 600}"#)
        _ = try await service.waitForJob(job.id) { $0.phase == "waiting_ready" }
        let cancel = try await service.send("DELETE", "/jobs/\(job.id)")
        #expect(cancel.status == 202)
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "cancelled" && done.readiness?.result == "cancelled")
        let again = try await service.send("DELETE", "/jobs/\(job.id)")
        #expect(again.status == 409)
        _ = try again.problem()
    }

    @Test("shutdown cancels a poll with the reason, and the job is stored so")
    func shutdownCancels() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(Self.gh200, "reset")
        _ = try await service.waitForJob(job.id) { $0.phase == "waiting_ready" }
        let application = service.application
        // The cancel ends the poll: stop() does not wait out the engine's 10 s grace for it (nor the
        // job's deadline), and the job is stored cancelled, not left running.
        let start = ContinuousClock.now
        await offPool { application.stop() }
        #expect(ContinuousClock.now - start < .seconds(10))
        let stored = try #require(try GraceStore(path: service.databasePath).job(id: job.id))
        #expect(stored.state == "cancelled")
        #expect(stored.errorJSON?.contains("shutdown") == true)
    }

    @Test("EBUSY twice, then success: three attempts recorded")
    func busyWrites() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.h100, #"{"busyWrites": 2, "readyAfterMs": 20}"#)
        let done = try await service.waitForJob(try await service.submit(Self.h100, "reset").id)
        #expect(done.state == "succeeded")
        #expect(done.attempts.map(\.errnoName) == ["EBUSY", "EBUSY", nil])
    }

    @Test("a reset write that hangs past the deadline: timed_out, GPU wedged, reads answered meanwhile")
    func hungWrite() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.cxl, #"{"readyAfterMs": 10}"#)
        // The reset write stays blocked in the kernel, past the job's deadline, until the test has
        // seen the GPU wedged and lets the write return.
        let kernel = service.simulated.kernel
        let cxl = try #require(BDF(Self.cxl))
        try kernel.holdResetWrites(cxl)
        let job = try await service.submit(Self.cxl, "reset", body: #"{"deadlineSeconds": 2}"#)
        // While the reset write is blocked in the kernel, reads are answered: the list, and the job
        // itself, whose attempt has not returned when the list's answer is in.
        _ = try await service.waitForJob(job.id) { $0.attempts.contains { $0.returnedAt == nil } }
        let list = try await service.get("/gpus")
        #expect(list.status == 200)
        let during = try await service.get("/jobs/\(job.id)").decode(JobView.self)
        #expect(during.attempts.last?.returnedAt == nil)
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "timed_out" && done.error?.type.hasSuffix("/wedged") == true)
        #expect(try await service.gpu(Self.cxl).state == "wedged")
        let refused = try await service.send("POST", "/gpus/\(Self.cxl)/reset")
        #expect(refused.status == 409)
        let health = try await service.get("/healthz").text
        #expect(
            health.contains(#""stuckKernelWrites":1"#) && health.contains(#""wedgedGPUs":["\#(Self.cxl)"]"#))
        // When the kernel finally returns, the GPU is no longer wedged.
        kernel.releaseResetWrites(cxl)
        try await waitUntil { try await service.gpu(Self.cxl).state != "wedged" }
    }

    @Test("a device that vanishes on reset: failed with ENODEV, GPU missing")
    func vanishes() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.h100, #"{"vanishOnReset": true}"#)
        let done = try await service.waitForJob(try await service.submit(Self.h100, "reset").id)
        #expect(done.state == "failed" && done.error?.errnoName == "ENODEV")
        #expect(try await service.gpu(Self.h100).state == "missing")
        let again = try await service.send("POST", "/gpus/\(Self.h100)/reset")
        #expect(again.status == 409)
    }

    @Test(
        "two concurrent resets of one GPU: one 202, one 409 naming the first; the same Idempotency-Key gets the same job"
    )
    func concurrentResets() async throws {
        let service = try await RunningService.start()
        // The first job's reset write is held until both answers are in, so the job that took the
        // GPU still holds it when the other request arrives, however slowly the threads run.
        let kernel = service.simulated.kernel
        let held = try #require(BDF(Self.gh200))
        try kernel.holdResetWrites(held)
        let client = service.client
        let target = "/gpus/\(Self.gh200)/reset"
        async let first = offPool { try client.request("POST", target, body: Array("{}".utf8)) }
        async let second = offPool { try client.request("POST", target, body: Array("{}".utf8)) }
        let responses = try await [first, second]
        kernel.releaseResetWrites(held)
        #expect(responses.map(\.status).sorted() == [202, 409])
        let accepted = try #require(responses.first { $0.status == 202 }).decode(JobView.self)
        let conflict = try #require(responses.first { $0.status == 409 })
        #expect(try conflict.problem().detail.contains(accepted.id))

        let keyed = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", headers: [("Idempotency-Key", "k-1")])
        let repeated = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", headers: [("Idempotency-Key", "k-1")])
        #expect(keyed.status == 202 && repeated.status == 202)
        #expect(try keyed.decode(JobView.self).id == repeated.decode(JobView.self).id)
        // The same key sent twice at once: both get the one job.
        async let racedFirst = offPool {
            try client.request(
                "POST", "/gpus/\(Self.cxl)/reset", headers: [("Idempotency-Key", "k-2")], body: [])
        }
        async let racedSecond = offPool {
            try client.request(
                "POST", "/gpus/\(Self.cxl)/reset", headers: [("Idempotency-Key", "k-2")], body: [])
        }
        let raced = try await [racedFirst, racedSecond]
        #expect(raced.map(\.status) == [202, 202])
        #expect(Set(try raced.map { try $0.decode(JobView.self).id }).count == 1)
        let misused = try await service.send(
            "POST", "/gpus/0029:01:00.0/reset", headers: [("Idempotency-Key", "k-1")])
        #expect(misused.status == 422)
    }

    @Test("a reset of a GPU a VM holds is refused with 409 naming the holder; dryRun shows the refusal")
    func heldByVM() async throws {
        let service = try await RunningService.start()
        let group = try #require(try await service.gpu(Self.gh200).iommuGroup?.id)
        try service.simulated.kernel.addHolder(pid: 4242, command: "qemu-system-aarch64", group: group)
        let refused = try await service.send("POST", "/gpus/\(Self.gh200)/reset")
        #expect(refused.status == 409)
        #expect(try refused.problem().detail.contains("4242"))
        let dryRun = try await service.send("POST", "/gpus/\(Self.gh200)/reset", body: #"{"dryRun": true}"#)
        #expect(dryRun.status == 200 && dryRun.text.contains("\"wouldRun\":false"))
    }

    @Test("a bus reset whose affected set holds a sibling on a host driver is refused naming the sibling")
    func busResetHitsHeldSibling() async throws {
        let service = try await RunningService.start()
        let refused = try await service.send("POST", "/gpus/\(Self.h100)/reset", body: #"{"method": "bus"}"#)
        #expect(refused.status == 409)
        let problem = try refused.problem()
        #expect(problem.detail.contains("0000:c3:00.1"))
    }

    @Test("guards: only the device's own methods, bad bodies are 400, unknown GPUs 404")
    func guards() async throws {
        let service = try await RunningService.start()
        // The GH200 lists only flr (the kernel's quirk removes bus); the planner's own tests cover a
        // GH200 whose list would include bus.
        let unlisted = try await service.send(
            "POST", "/gpus/\(Self.gh200)/reset", body: #"{"method": "bus"}"#)
        #expect(unlisted.status == 422)
        let problem = try unlisted.problem()
        #expect(problem.type.hasSuffix("/unsupported-method") && problem.detail.contains("flr"))
        for body in [#"{"method": "warm"}"#, #"{"bogus": 1}"#, "[1]", #"{"method": "flr", "method": "bus"}"#]
        {
            let response = try await service.send("POST", "/gpus/\(Self.gh200)/reset", body: body)
            #expect(response.status == 400, "\(body)")
            _ = try response.problem()
        }
        let outOfRange = try await service.send(
            "POST", "/gpus/\(Self.gh200)/reset", body: #"{"deadlineSeconds": -1}"#)
        #expect(outOfRange.status == 422)
        #expect(try outOfRange.problem().type.hasSuffix("/value-out-of-range"))
        #expect(try await service.send("POST", "/gpus/0000:01:00.0/reset").status == 404)
        #expect(try await service.send("POST", "/gpus/..%2Fx/reset").status == 400)
    }

    @Test("50 concurrent jobs across the GPUs all finish, without deadlock")
    func fiftyJobs() async throws {
        let service = try await RunningService.start()
        let gpus = [Self.cxl, Self.gh200, Self.h100, "0029:01:00.0"]
        for gpu in gpus { try await service.setFaults(gpu, #"{"readyAfterMs": 5}"#) }
        var ids: [String] = []
        var attempts = 0
        while ids.count < 50 && attempts < 5000 {
            attempts += 1
            let gpu = gpus[attempts % gpus.count]
            let response = try await service.send("POST", "/gpus/\(gpu)/reset")
            if response.status == 202 { ids.append(try response.decode(JobView.self).id) }
        }
        #expect(ids.count == 50)
        for id in ids {
            let done = try await service.waitForJob(id, timeout: .seconds(30))
            #expect(done.state == "succeeded", "\(id): \(done.state)")
        }
    }

    @Test("bind with group moves the H100's group to vfio-pci; unbind gives the original drivers back")
    func bindAndUnbind() async throws {
        let service = try await RunningService.start()
        let kernel = service.simulated.kernel
        // Start from the H100 on its native driver.
        try kernel.perform(.driverOverride(BDF(Self.h100)!, ""))
        try kernel.perform(.unbind(BDF(Self.h100)!, driver: "vfio-pci"))
        try kernel.perform(.driversProbe(BDF(Self.h100)!))
        try await service.refresh()
        #expect(try await service.gpu(Self.h100).driver == "nvidia")

        let notViable = try await service.send(
            "POST", "/gpus/\(Self.h100)/bind", body: #"{"driver": "vfio-pci"}"#)
        #expect(notViable.status == 409)
        let bind = try await service.submit(
            Self.h100, "bind", body: #"{"driver": "vfio-pci", "group": true}"#)
        let bound = try await service.waitForJob(bind.id)
        #expect(bound.state == "succeeded", "\(bound.error?.detail ?? "")")
        let gpu = try await service.gpu(Self.h100)
        #expect(gpu.driver == "vfio-pci")
        #expect(gpu.iommuGroup?.members.allSatisfy { $0.driver == "vfio-pci" } == true)

        let unbind = try await service.submit(Self.h100, "unbind", body: #"{"driver": "original"}"#)
        let unbound = try await service.waitForJob(unbind.id)
        #expect(unbound.state == "succeeded", "\(unbound.error?.detail ?? "")")
        let after = try await service.gpu(Self.h100)
        #expect(after.driver == "nvidia", "unbind: \(unbound.method), GPU: \(after)")
    }

    @Test("bind auto picks the VFIO variant driver from modules.alias")
    func bindAuto() async throws {
        let service = try await RunningService.start()
        let gpu = "0019:01:00.0"
        #expect(try await service.gpu(gpu).driver == "nvidia")
        let done = try await service.waitForJob(try await service.submit(gpu, "bind").id)
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        #expect(done.method.used == "nvgrace_gpu_vfio_pci")
        #expect(try await service.gpu(gpu).driver == "nvgrace_gpu_vfio_pci")
    }
}

struct GPUBody: Decodable {
    struct Group: Decodable {
        struct Member: Decodable {
            var bdf: String
            var driver: String?
        }
        var id: Int
        var members: [Member]
    }
    var bdf: String
    var driver: String?
    var state: String
    var iommuGroup: Group?
}

extension RunningService {
    func setFaults(_ gpu: String, _ json: String) async throws {
        let response = try await send("PUT", "/simulator/devices/\(gpu)/faults", body: json)
        #expect(response.status == 200)
    }

    func submit(_ gpu: String, _ kind: String, body: String = "{}") async throws -> JobView {
        let response = try await send("POST", "/gpus/\(gpu)/\(kind)", body: body)
        #expect(response.status == 202, "\(response.text)")
        #expect(response.header("Location")?.hasPrefix("/jobs/") == true)
        return try response.decode(JobView.self)
    }

    func gpu(_ bdf: String) async throws -> GPUBody {
        try await get("/gpus/\(bdf)").decode(GPUBody.self)
    }

    /// Polls the job until `done` holds (by default: a terminal state).
    func waitForJob(
        _ id: String, timeout: Duration = .seconds(15),
        until done: (JobView) -> Bool = { !["queued", "running"].contains($0.state) }
    ) async throws -> JobView {
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await get("/jobs/\(id)").decode(JobView.self)
            if done(job) { return job }
            guard ContinuousClock.now < deadline else {
                Issue.record("job \(id) still \(job.state)/\(job.phase) after \(timeout)")
                return job
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until no job holds the GPU: a job shows its outcome before it puts back what it changed
    /// (power/control) and frees the GPU, so its last writes come after that.
    func waitUntilFree(_ gpu: String) async throws {
        let engine = application.engine
        let bdf = try #require(BDF(gpu))
        try await waitUntil { !engine.isHeld(bdf) }
    }

    func refresh() async throws {
        let application = application
        _ = try await offPool { try application.inventory.refresh() }
    }
}

/// Polls a condition until it holds. The minute's deadline only guards against a hang: the
/// condition is a state the test waits for, and a poll can be starved of the cooperative pool for
/// seconds while CPU-bound tests run beside it.
func waitUntil(_ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 60 s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
