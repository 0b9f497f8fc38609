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

/// Desired bindings and reconcile, on the simulator: `GET /bindings`, `DELETE /bindings/{bdf}`,
/// rebinding behind graced's back, a restart with a changed binding, a held function.
@Suite("Desired bindings", .serialized)
struct BindingTests {
    /// A GH200 on the host driver nvidia in the demo host.
    static let onNvidia = "0019:01:00.0"
    /// A GH200 on its VFIO variant driver.
    static let onVariant = "0009:01:00.0"
    static let variant = "nvgrace_gpu_vfio_pci"

    struct BindingsBody: Decodable {
        struct Item: Decodable {
            var bdf: String
            var desiredDriver: String?
            var currentDriver: String?
            var holds: Bool
            var status: String
            var note: String?
            var job: String?
        }
        var items: [Item]
        var reconcile: String
    }

    struct JobsBody: Decodable {
        var items: [JobView]
    }

    /// Moves the function to `driver` (nil: none) the way a person with a shell would.
    static func rebindBehindTheBack(_ kernel: SimulatedKernel, _ text: String, to driver: String?) throws {
        let bdf = BDF(text)!
        let root = kernel.root
        if let current = root.linkName(root.device(bdf) + "/driver") {
            try kernel.perform(.unbind(bdf, driver: current))
        }
        try kernel.perform(.driverOverride(bdf, driver ?? ""))
        if driver != nil { try kernel.perform(.driversProbe(bdf)) }
    }

    static func bindings(_ service: RunningService) async throws -> BindingsBody {
        try await service.get("/bindings").decode(BindingsBody.self)
    }

    static func reconcileJobs(_ service: RunningService) async throws -> [JobView] {
        try await service.get("/jobs?limit=100").decode(JobsBody.self).items.filter { $0.kind == "reconcile" }
    }

    @Test("a bind records the desired driver; rebinding behind graced's back is put right on the next scan")
    func rebindBehindTheBack() async throws {
        let service = try await RunningService.start()
        #expect(try await Self.bindings(service).items.isEmpty)
        let bind = try await service.submit(Self.onNvidia, "bind")
        #expect(try await service.waitForJob(bind.id).state == "succeeded")
        // Recorded before the job shows succeeded (and before it frees the GPU): a scan in between
        // must not find the GPU free and off its old desired driver.
        let recorded = try #require(try await Self.bindings(service).items.first)
        #expect(recorded.bdf == Self.onNvidia && recorded.desiredDriver == Self.variant)
        #expect(recorded.holds && recorded.status == "holds" && recorded.job == bind.id)

        try Self.rebindBehindTheBack(service.simulated.kernel, Self.onNvidia, to: "nvidia")
        let root = service.simulated.root
        #expect(root.linkName(root.device(BDF(Self.onNvidia)!) + "/driver") == "nvidia")
        try await service.refresh()
        try await waitUntil {
            try await Self.reconcileJobs(service).first.map { $0.state == "succeeded" } ?? false
        }
        let job = try #require(try await Self.reconcileJobs(service).first)
        #expect(job.gpu == Self.onNvidia && job.method.requested == Self.variant)
        #expect(job.requestedBy == "graced (reconcile)")
        try await waitUntil { try await service.gpu(Self.onNvidia).driver == Self.variant }
        #expect(try await Self.bindings(service).items.first?.holds == true)
        // In the audit trail like any job.
        let audit = try await service.get("/audit").text
        #expect(audit.contains("job.reconcile"))

        // Already right: further scans write nothing (once the reconcile job has put back what it
        // changed and freed the GPU).
        try await service.waitUntilFree(Self.onNvidia)
        service.simulated.kernel.clearWrites()
        try await service.refresh()
        try await service.refresh()
        #expect(service.simulated.kernel.writes.isEmpty)
        #expect(try await Self.reconcileJobs(service).count == 1)

        // Forgotten: graced no longer cares.
        #expect(try await service.send("DELETE", "/bindings/\(Self.onNvidia)").status == 200)
        #expect(try await service.send("DELETE", "/bindings/\(Self.onNvidia)").status == 404)
        try Self.rebindBehindTheBack(service.simulated.kernel, Self.onNvidia, to: "nvidia")
        try await service.refresh()
        #expect(try await Self.reconcileJobs(service).count == 1)
        #expect(try await Self.bindings(service).items.isEmpty)
    }

    @Test("persist: false leaves the desired bindings alone; an unbind to none is a desired binding too")
    func persistFalse() async throws {
        let service = try await RunningService.start()
        let bind = try await service.submit(Self.onNvidia, "bind", body: #"{"persist": false}"#)
        #expect(try await service.waitForJob(bind.id).state == "succeeded")
        let unbind = try await service.submit(Self.onVariant, "unbind", body: #"{"driver": "none"}"#)
        #expect(try await service.waitForJob(unbind.id).state == "succeeded")
        try await waitUntil { try await !Self.bindings(service).items.isEmpty }
        let items = try await Self.bindings(service).items
        #expect(items.map(\.bdf) == [Self.onVariant])
        #expect(items.first?.desiredDriver == nil && items.first?.holds == true)
        #expect(
            try await service.send("POST", "/gpus/\(Self.onNvidia)/bind", body: #"{"persist": 1}"#).status
                == 400)

        // With a desired binding, a change made with persist: false is not fought (the desired
        // binding stays, to be applied at the next start or the next change behind graced's back).
        let rebind = try await service.submit(
            Self.onVariant, "bind", body: #"{"driver": "vfio-pci", "persist": false}"#)
        #expect(try await service.waitForJob(rebind.id).state == "succeeded")
        try await service.refresh()
        try await service.refresh()
        #expect(try await Self.reconcileJobs(service).isEmpty)
        let kept = try #require(try await Self.bindings(service).items.first)
        #expect(kept.desiredDriver == nil && kept.currentDriver == "vfio-pci" && kept.status == "differs")
    }

    @Test("a held function is reported, not touched")
    func heldFunction() async throws {
        let service = try await RunningService.start()
        // Already on its driver: the bind writes nothing but records the desire.
        let bind = try await service.submit(Self.onVariant, "bind")
        #expect(try await service.waitForJob(bind.id).state == "succeeded")
        try await service.waitUntilFree(Self.onVariant)
        try await waitUntil { try await !Self.bindings(service).items.isEmpty }
        let kernel = service.simulated.kernel
        try Self.rebindBehindTheBack(kernel, Self.onVariant, to: "vfio-pci")
        // A VM opens the group (10) on vfio-pci.
        try kernel.addHolder(pid: 4242, command: "qemu-system-aar", group: 10)
        kernel.clearWrites()
        try await service.refresh()
        let item = try #require(try await Self.bindings(service).items.first)
        #expect(item.status == "held" && !item.holds && item.currentDriver == "vfio-pci")
        #expect(item.note?.contains("4242") == true)
        #expect(kernel.writes.isEmpty)
        #expect(try await Self.reconcileJobs(service).isEmpty)
        // Still held at the next scan: still nothing written.
        try await service.refresh()
        #expect(kernel.writes.isEmpty)
        #expect(try await Self.reconcileJobs(service).isEmpty)

        // The VM exits: the next scan puts the GPU back on its desired driver.
        try kernel.removeHolder(pid: 4242)
        try await service.refresh()
        try await waitUntil {
            try await Self.reconcileJobs(service).first.map { $0.state == "succeeded" } ?? false
        }
        let root = service.simulated.root
        #expect(root.linkName(root.device(BDF(Self.onVariant)!) + "/driver") == Self.variant)
        try await waitUntil { try await Self.bindings(service).items.first?.holds == true }
    }

    @Test("a function back from a hot-unplug before the inventory saw it: tried again at the next scan")
    func backBeforeTheInventory() async throws {
        let service = try await RunningService.start()
        let bind = try await service.submit(Self.onNvidia, "bind")
        #expect(try await service.waitForJob(bind.id).state == "succeeded")
        let kernel = service.simulated.kernel
        let bdf = BDF(Self.onNvidia)!
        try kernel.perform(.remove(bdf))
        try await service.refresh()
        #expect(try await service.gpu(Self.onNvidia).state == "missing")
        // Back (on its boot-time driver, nvidia) but not yet seen by a scan: a look now cannot
        // submit a job for a GPU the inventory calls missing.
        try kernel.perform(.rescan)
        service.application.reconciler.compare()
        let waiting = try #require(try await Self.bindings(service).items.first)
        #expect(waiting.status == "differs" && waiting.note?.contains("not yet") == true)
        #expect(try await Self.reconcileJobs(service).isEmpty)
        // The next scan sees it, with the same driver as the last look, and reconciles it.
        try await service.refresh()
        try await waitUntil {
            try await Self.reconcileJobs(service).first.map { $0.state == "succeeded" } ?? false
        }
        let root = service.simulated.root
        #expect(root.linkName(root.device(bdf) + "/driver") == Self.variant)
    }

    @Test("report mode only reports")
    func reportMode() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-bindings")
        defer { try? host.removeFiles() }
        try await Self.withApplication(host, database: host.folder + "/graced.sqlite", mode: .report) {
            application in
            let client = RawHTTPClient(port: try #require(application.port))
            let bind = try await offPool {
                try client.request("POST", "/gpus/\(Self.onNvidia)/bind", body: Array("{}".utf8))
            }
            #expect(bind.status == 202)
            let list: @Sendable () throws -> BindingsBody = {
                try client.request("GET", "/bindings").decode(BindingsBody.self)
            }
            // The job shows succeeded before it puts back what it changed (power/control) and frees
            // the GPU: only then is every write of its own done.
            let engine = application.engine
            let gpu = try #require(BDF(Self.onNvidia))
            try await waitUntil { !engine.isHeld(gpu) }
            #expect(try await offPool(list).items.first?.holds == true)
            try Self.rebindBehindTheBack(host.kernel, Self.onNvidia, to: "nvidia")
            host.kernel.clearWrites()
            let inventory = application.inventory
            _ = try await offPool { try inventory.refresh() }
            let answer = try await offPool(list)
            #expect(answer.reconcile == "report")
            let item = answer.items.first
            #expect(item?.status == "differs" && item?.note?.contains("report") == true)
            #expect(host.kernel.writes.isEmpty)
        }
    }

    @Test("a restart with a changed binding: the new daemon puts it back at startup")
    func restartWithChangedBinding() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-bindings")
        defer { try? host.removeFiles() }
        let database = host.folder + "/graced.sqlite"
        let store = try GraceStore(path: database)
        try await Self.withApplication(host, database: database, mode: .apply) { first in
            let client = RawHTTPClient(port: try #require(first.port))
            let bind = try await offPool {
                try client.request("POST", "/gpus/\(Self.onNvidia)/bind", body: Array("{}".utf8))
            }
            #expect(bind.status == 202)
            let id = try bind.decode(JobView.self).id
            // The desired driver is recorded while the job still holds the GPU, before it shows
            // succeeded: wait for the job itself.
            try await waitUntil { first.engine.job(id)?.state == .succeeded }
            #expect(try store.desiredBindings().count == 1)
        }

        // While graced is down, someone moves the GPU back to nvidia.
        try Self.rebindBehindTheBack(host.kernel, Self.onNvidia, to: "nvidia")
        try await Self.withApplication(host, database: database, mode: .apply) { _ in
            try await waitUntil {
                host.root.linkName(host.root.device(BDF(Self.onNvidia)!) + "/driver") == Self.variant
            }
            let jobs = try store.jobs(bdf: Self.onNvidia, kind: "reconcile", state: nil, limit: 10)
            #expect(jobs.count == 1)
        }
    }

    /// Starts an application over `host` (off the cooperative pool: starting and stopping block),
    /// runs `body`, and stops it however `body` ends.
    static func withApplication(
        _ host: SimulatedHost, database: String, mode: BindingReconciler.Mode,
        _ body: (Application) async throws -> Void
    ) async throws {
        let application = try await offPool { try Self.application(host, database: database, mode: mode) }
        do {
            try await body(application)
        } catch {
            await offPool { application.stop() }
            throw error
        }
        await offPool { application.stop() }
    }

    static func application(_ host: SimulatedHost, database: String, mode: BindingReconciler.Mode) throws
        -> Application
    {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let application = try Application(
            host: .simulated(host),
            store: try GraceStore(path: database), server: RunningService.openLoopback(),
            rescanIntervalSeconds: 0, healthIntervalSeconds: 0, reconcile: mode, logger: logger)
        try application.start()
        return application
    }
}
