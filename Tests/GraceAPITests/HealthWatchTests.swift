import FoundationEssentials
import GraceTestSupport
import Logging
import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// The health watch on the simulated host: each fault the simulator can inject shows in the GPU's
/// `health` and in `graceapi_gpu_health`, and goes away when cleared.
@Suite("Health watch", .serialized)
struct HealthWatchTests {
    static let h100 = "0000:c3:00.0"

    @Test(
        "an idle GPU's fault shows in its health, its metric, and clears",
        arguments: [
            (#"{"allOnes": true}"#, #"{"allOnes": false}"#, "all_ones", "failed"),
            (#"{"d3cold": true}"#, #"{"d3cold": false}"#, "d3cold", "failed"),
            (#"{"degradedLink": true}"#, #"{"degradedLink": false}"#, "link_degraded", "degraded"),
        ])
    func faultSeen(_ fault: String, _ clear: String, _ reason: String, _ status: String) async throws {
        let service = try await RunningService.start()
        let healthy = try await service.health(Self.h100)
        #expect(healthy.status == "ok")
        #expect(healthy.checkedAt != nil)
        #expect(healthy.reasons.isEmpty)

        try await service.setFaults(Self.h100, fault)
        try await service.checkHealth()
        let sick = try await service.health(Self.h100)
        #expect(sick.status == status)
        #expect(sick.reasons.map(\.reason) == [reason])
        let metrics = try await service.scrape()
        #expect(metrics.value("graceapi_gpu_health", ["bdf": Self.h100, "reason": reason]) == 1)
        #expect(metrics.value("graceapi_gpu_health", ["bdf": Self.h100, "reason": "none"]) == nil)
        // The others are untouched.
        #expect(metrics.value("graceapi_gpu_health", ["bdf": "0009:01:00.0", "reason": "none"]) == 1)

        // A second look keeps the time the problem was first seen.
        try await service.checkHealth()
        #expect(try await service.health(Self.h100).reasons.first?.since == sick.reasons.first?.since)

        try await service.setFaults(Self.h100, clear)
        try await service.checkHealth()
        #expect(try await service.health(Self.h100).status == "ok")
        #expect(
            try await service.scrape().value("graceapi_gpu_health", ["bdf": Self.h100, "reason": reason])
                == nil)
    }

    @Test("the watch reads no config space of a GPU in D3cold, and says why")
    func d3coldNotWoken() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.h100, #"{"d3cold": true}"#)
        try await service.checkHealth()
        let detail = try #require(try await service.health(Self.h100).reasons.first?.detail)
        #expect(detail.contains("not read"))
    }

    @Test("a look reads four config dwords of a GPU (the verdicts' registers), not 256 bytes")
    func looksReadOnlyTheDwordsTheVerdictsNeed() async throws {
        let service = try await RunningService.start()
        let meter = service.simulated.configReads
        let gpus = service.application.inventory.snapshot.gpus.compactMap { BDF($0.bdf) }
        try #require(!gpus.isEmpty)
        // The first look walks the capability list once to find the link registers.
        try await service.checkHealth()
        meter.reset()
        try await service.checkHealth()
        for gpu in gpus {
            #expect(meter.dwords(gpu) == 4, "\(gpu)")
        }
        // Those four dwords still see what the 256 bytes saw.
        try await service.setFaults(Self.h100, #"{"degradedLink": true}"#)
        meter.reset()
        try await service.checkHealth()
        #expect(meter.dwords(BDF(Self.h100)!) == 4)
        #expect(try await service.health(Self.h100).reasons.map(\.reason) == ["link_degraded"])
    }

    @Test("a GPU that a job holds is not looked at")
    func heldNotLooked() async throws {
        let service = try await RunningService.start()
        let inventory = service.application.inventory
        let watch = HealthWatch(inventory: inventory, intervalSeconds: 0, logger: Logger(label: "test")) {
            _ in true
        }
        try await service.setFaults(Self.h100, #"{"allOnes": true}"#)
        await offPool { watch.check() }
        #expect(try await service.health(Self.h100).status == "ok")
    }

    @Test(
        "on a large host each periodic look takes the next share of the GPUs, so every GPU is seen within the sweep"
    )
    func budgetedChecksGoRound() async throws {
        #expect(HealthWatch.looksPerCheck(of: 8, intervalSeconds: 5) == 8)
        #expect(HealthWatch.looksPerCheck(of: 256, intervalSeconds: 5) == 256)
        #expect(HealthWatch.looksPerCheck(of: 4096, intervalSeconds: 5) == 342)
        #expect(HealthWatch.looksPerCheck(of: 4096, intervalSeconds: 120) == 4096)

        let service = try await RunningService.start()
        let inventory = service.application.inventory
        let gpus = inventory.snapshot.gpus.map(\.bdf)
        try #require(gpus.count >= 3)
        let watch = HealthWatch(inventory: inventory, intervalSeconds: 0, logger: Logger(label: "test")) {
            _ in false
        }
        // The last GPU falls off the bus; looking at one GPU a check, it is found at the last turn.
        let last = try #require(gpus.last)
        try await service.setFaults(last, #"{"allOnes": true}"#)
        for turn in 1...gpus.count {
            await offPool { watch.check(atMost: 1) }
            let status = try await service.health(last).status
            #expect((status == "ok") == (turn < gpus.count), "turn \(turn): \(status)")
        }
        // And the next turn starts over from the first.
        try await service.setFaults(gpus[0], #"{"allOnes": true}"#)
        await offPool { watch.check(atMost: 1) }
        #expect(try await service.health(gpus[0]).status != "ok")
    }

    @Test("a look that finds nothing new waits to be shown (longer on larger hosts), a change shows at once")
    func unchangedLooksWait() async throws {
        #expect(InventoryService.unchangedLookDelayMs(gpus: 8) == 600)
        #expect(InventoryService.unchangedLookDelayMs(gpus: 4096) == 300_000)
        let service = try await RunningService.start()
        let inventory = service.application.inventory
        let bdf = try #require(inventory.snapshot.gpus.first?.bdf)
        let shown = try #require(inventory.snapshot.gpu(bdf)?.health)
        func look(_ status: HealthStatus, at checked: String, nowMs: Int64) {
            inventory.setHealth(
                [bdf: GPUHealth(status: status, checkedAt: checked, reasons: [])], nowMs: nowMs)
        }
        // The same verdict, a later look, before the delay has passed: kept, not published yet.
        look(shown.status, at: "2030-01-01T00:00:00.000Z", nowMs: 0)
        #expect(inventory.snapshot.gpu(bdf)?.health == shown)
        // Long after the last publication: the look goes out.
        let later = Timestamp.nowMs() + 600_000
        look(shown.status, at: "2030-01-01T00:00:05.000Z", nowMs: later)
        #expect(inventory.snapshot.gpu(bdf)?.health.checkedAt == "2030-01-01T00:00:05.000Z")
        // Another verdict, however soon: at once.
        look(.degraded, at: "2030-01-01T00:00:10.000Z", nowMs: 0)
        #expect(inventory.snapshot.gpu(bdf)?.health.status == .degraded)
    }

    @Test("the GPU list carries every GPU's health")
    func listed() async throws {
        let service = try await RunningService.start()
        let list = try await service.get("/gpus")
        let body = try JSONDecoder().decode(GPUList.self, from: Data(list.body))
        #expect(!body.items.isEmpty)
        #expect(body.items.allSatisfy { $0.health.status == "ok" })
    }

    struct GPUList: Decodable {
        struct Item: Decodable { var health: GPUHealthBody }
        var items: [Item]
    }
}

struct GPUHealthBody: Decodable {
    struct Reason: Decodable {
        var reason: String
        var detail: String
        var since: String
    }
    var status: String
    var checkedAt: String?
    var reasons: [Reason]
}

extension RunningService {
    func checkHealth() async throws {
        let watch = application.health
        await offPool { watch.check() }
    }

    func health(_ bdf: String) async throws -> GPUHealthBody {
        struct Body: Decodable { var health: GPUHealthBody }
        return try await get("/gpus/\(bdf)").decode(Body.self).health
    }
}
