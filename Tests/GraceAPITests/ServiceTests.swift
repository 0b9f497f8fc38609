import BuildInfo
import FoundationEssentials
import Passthrough
import PassthroughSimulator
import Testing

@testable import GraceAPI
@testable import GraceHTTP

@Suite("graced over HTTP", .serialized)
struct ServiceTests {
    @Test("GET /gpus lists the six simulated GPUs and no other function")
    func listsGPUs() async throws {
        let service = try await RunningService.start()
        let response = try await service.get("/gpus")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        let gpus = try response.decode(GPUListBody.self).items
        #expect(gpus.count == 6)
        #expect(Set(gpus.map(\.bdf)).isDisjoint(with: ["0000:c4:00.0", "0000:01:00.0"]))
        #expect(
            gpus.filter { $0.deviceId == "0x2342" }.allSatisfy { gpu in
                // usemem is rounded up to a power of two, leaving a hole that reads 0xFF.
                gpu.memory?.regions.map(\.name) == [.usemem, .resmem] && gpu.memory!.regions[0].holeBytes > 0
            })
    }

    @Test("an unchanged resource answers 304 to its ETag, 200 to another")
    func conditionalGet() async throws {
        let service = try await RunningService.start()
        for path in ["/gpus", "/gpus/0009:01:00.0", "/gpus/0009:01:00.0/layout"] {
            let first = try await service.get(path)
            let etag = try #require(first.header("ETag"))
            let again = try await service.get(path, headers: [("If-None-Match", etag)])
            #expect(again.status == 304 && again.body.isEmpty && again.header("ETag") == etag)
            let other = try await service.get(path, headers: [("If-None-Match", "\"stale\"")])
            #expect(other.status == 200 && other.body == first.body)
        }
    }

    @Test("uppercase addresses are normalised, and percent-encoded colons name the same GPU")
    func uppercase() async throws {
        let service = try await RunningService.start()
        for path in ["/gpus/0000:C3:00.0", "/gpus/0000%3Ac3%3A00.0", "/gpus/0000%3AC3:00.0"] {
            let response = try await service.get(path)
            #expect(response.status == 200, "\(path)")
            #expect(try response.decode(GPUDevice.self).bdf == "0000:c3:00.0")
        }
    }

    @Test(
        "malformed addresses are 400 problems and never reach the filesystem",
        arguments: [
            "/gpus/ABCD", "/gpus/..", "/gpus/..%2F..%2F..%2Fetc%2Fpasswd", "/gpus/0009:01:00.0%2F",
            "/gpus/0009%3A01%3A00.0%2F", "/gpus/0009:01:00.0%00", "/gpus/0009:01:00.8/layout",
            "/gpus/0009:01:20.0",
            "/gpus/%2E%2E/layout", "/gpus/0009:01:00.0.0",
        ])
    func badAddress(_ path: String) async throws {
        let service = try await RunningService.start()
        let response = try await service.get(path)
        #expect(response.status == 400)
        #expect(try response.problem().type.hasSuffix("/invalid-bdf"))
    }

    @Test("a well-formed address that is not a GPU is 404; an unknown path is 404")
    func notFound() async throws {
        let service = try await RunningService.start()
        for path in [
            "/gpus/0000:01:00.0", "/gpus/0000:c4:00.0/layout", "/gpus/1234:56:07.1", "/nothing", "/gpus/",
        ] {
            let response = try await service.get(path)
            #expect(response.status == 404, "\(path)")
            _ = try response.problem()
        }
    }

    @Test("a wrong method is 405 with Allow")
    func wrongMethod() async throws {
        let service = try await RunningService.start()
        let response = try await service.send("DELETE", "/gpus")
        #expect(response.status == 405)
        #expect(response.header("Allow")?.contains("GET") == true)
        _ = try response.problem()
    }

    @Test("a body over the limit is 413")
    func tooLarge() async throws {
        let service = try await RunningService.start()
        let body = Array(repeating: UInt8(ascii: " "), count: 200 << 10)
        let response = try await service.send("PUT", "/simulator/devices/0009:01:00.0/faults", body: body)
        #expect(response.status == 413)
        _ = try response.problem()
    }

    @Test("GET /gpus/{bdf}/layout has the current layout and the first snapshot, not drift")
    func layout() async throws {
        let service = try await RunningService.start()
        let response = try await service.get("/gpus/0029:01:00.0/layout")
        #expect(response.status == 200)
        let view = try response.decode(LayoutBody.self)
        #expect(view.bdf == "0029:01:00.0")
        #expect(view.current.memory?.regions.first { $0.name == .usemem }?.length == 0x17A0_0000_00)
        #expect(view.snapshots.count == 1 && view.snapshots[0].drift == false)
        #expect(view.snapshots[0].layout == view.current)
    }

    @Test("a layout that changes between runs is recorded as a drift snapshot with what changed")
    func drift() async throws {
        // The first run's folder (and the database in it) lives until the end of the test.
        let first = try await RunningService.start()
        let database = first.databasePath
        #expect(try await first.get("/gpus/0009:01:00.0/layout").decode(LayoutBody.self).snapshots.count == 1)
        await first.stop()
        // Firmware now reports 144 GiB for that GPU: same device, different layout.
        var entries = SimulatedHost.demoFirmwareMemory
        entries[BDF("0009:01:00.0")!]?.length = 144 << 30
        let second = try await RunningService.start(
            firmware: FirmwareMemoryTable(source: "simulator", entries: entries), databasePath: database)
        let view = try await second.get("/gpus/0009:01:00.0/layout").decode(LayoutBody.self)
        #expect(view.snapshots.map(\.drift) == [true, false])
        #expect(view.snapshots[0].changes?.contains("device memory") == true)
        // Unchanged GPUs got no new snapshot.
        #expect(
            try await second.get("/gpus/0019:01:00.0/layout").decode(LayoutBody.self).snapshots.count == 1)
    }

    @Test("simulator faults: GET, PUT merges, bad bodies are 400, unknown devices 404")
    func simulatorFaults() async throws {
        let service = try await RunningService.start()
        let path = "/simulator/devices/0009:01:00.0/faults"
        // Every field is listed, null where no fault is injected.
        #expect(
            try await service.get(path).text
                == #"{"allOnes":null,"busyWrites":null,"d3cold":null,"degradedLink":null,"hangWriteMs":null,"#
                + #""heldInReset":null,"holdResetWrite":null,"#
                + #""ineffectiveMethods":null,"neverReady":null,"readyAfterMs":null,"#
                + #""recoversOnlyAfterRescan":null,"resetWriteMs":null,"vanishOnReset":null}"#)
        let set = try await service.send(
            "PUT", path, body: Array(#"{"busyWrites": 2, "readyAfterMs": 50}"#.utf8))
        #expect(set.status == 200)
        let merged = try await service.send("PUT", path, body: Array(#"{"neverReady": true}"#.utf8))
        let faults = try merged.decode(SimulatorFaults.self)
        #expect(faults.busyWrites == 2 && faults.readyAfterMs == 50 && faults.neverReady == true)
        #expect(try service.simulated.kernel.faults(for: BDF("0009:01:00.0")!) == faults)
        for body in [
            #"{"busyWrites": -1}"#, #"{"bogus": 1}"#, #"{"neverReady": "yes"}"#,
            #"{"ineffectiveMethods": ["reboot"]}"#, "[]", "not json",
        ] {
            let response = try await service.send("PUT", path, body: Array(body.utf8))
            #expect(response.status == 400, "\(body)")
            _ = try response.problem()
        }
        let missing = try await service.send(
            "PUT", "/simulator/devices/0123:45:00.0/faults", body: Array("{}".utf8))
        #expect(missing.status == 404)
    }

    @Test("without --simulate the simulator routes do not exist")
    func simulatorRoutesOnlyWhenSimulating() async throws {
        let service = try await RunningService.start(simulate: false)
        let response = try await service.get("/simulator/devices/0009:01:00.0/faults")
        #expect(response.status == 404)
        #expect(try await service.get("/healthz").decode(HealthBody.self).simulated == false)
    }

    @Test("GET /healthz and GET /openapi.yaml")
    func healthAndContract() async throws {
        let service = try await RunningService.start()
        let health = try await service.get("/healthz").decode(HealthBody.self)
        #expect(health.status == "ok" && health.gpus == 6 && health.simulated)
        #expect(health.version == BuildInfo.version && health.revision == BuildInfo.revision)
        let contract = try await service.get("/openapi.yaml")
        #expect(contract.status == 200 && contract.text.hasPrefix("openapi: 3.1.0"))
    }
}

struct LayoutBody: Decodable {
    struct Layout: Decodable, Equatable {
        var bars: [BAR]
        var memory: DeviceMemory?
    }
    struct Snapshot: Decodable {
        var id: Int64
        var takenAt: String
        var drift: Bool
        var changes: String?
        var layout: Layout
    }
    var bdf: String
    var current: Layout
    var snapshots: [Snapshot]
}

struct HealthBody: Decodable {
    var status: String
    var gpus: Int
    var simulated: Bool
    var version: String
    var revision: String
}
