import GraceTestSupport
import Passthrough
import PassthroughSimulator
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// A GPU that runtime PM put in D3cold is not powered up to be described: the kernel resumes a
/// function in D3cold to serve a config read, and a full rescan runs every few minutes. The
/// simulator's meter counts the config dwords read of each function.
@Suite("A GPU in D3cold", .serialized)
struct SuspendedGPUTests {
    static let gh200 = BDF("0009:01:00.0")!
    static let h100 = BDF("0000:c3:00.0")!

    @Test("a full rescan reads none of its config space, keeps what it read while awake, and says so")
    func rescanDoesNotWakeIt() async throws {
        let service = try await RunningService.start()
        let inventory = service.application.inventory
        let awake = try #require(inventory.snapshot.gpu(Self.gh200.description))
        #expect(awake.describedFrom == .configSpace)
        #expect(awake.memory != nil)
        try await service.setFaults(Self.gh200.description, #"{"d3cold": true}"#)
        let meter = service.simulated.configReads
        meter.reset()

        try await offPool { _ = try inventory.refresh() }
        #expect(meter.dwords(Self.gh200) == 0)
        #expect(meter.dwords(Self.h100) > 0, "the awake GPUs are read as before")
        let suspended = try #require(inventory.snapshot.gpu(Self.gh200.description))
        #expect(suspended.describedFrom == .earlierConfigSpace)
        #expect(suspended.readinessProbe == awake.readinessProbe)
        #expect(suspended.memory == awake.memory)
        #expect(suspended.state == awake.state)
        #expect(suspended.driver == awake.driver)
        let answer = try await service.get("/gpus/\(Self.gh200)")
        #expect(answer.text.contains(#""describedFrom":"earlier-config-space""#), "\(answer.text)")

        // A kernel event about it (a driver bound, say) re-reads it without waking it either.
        #expect(await offPool { inventory.reread([Self.gh200]) } != .needsFullScan)
        #expect(meter.dwords(Self.gh200) == 0)
        #expect(inventory.snapshot.gpu(Self.gh200.description)?.describedFrom == .earlierConfigSpace)

        // Awake again: read, and described from config space.
        try await service.setFaults(Self.gh200.description, #"{"d3cold": false}"#)
        try await offPool { _ = try inventory.refresh() }
        #expect(meter.dwords(Self.gh200) > 0)
        #expect(inventory.snapshot.gpu(Self.gh200.description)?.describedFrom == .configSpace)
    }

    @Test("one suspended since before graced started is described from sysfs alone, never read")
    func suspendedFromTheStart() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-d3cold")
        _ = try host.kernel.setFaults(SimulatorFaults(d3cold: true), for: Self.gh200)
        let service = try await RunningService.start(host: host)
        let inventory = service.application.inventory
        try await offPool { _ = try inventory.refresh() }
        #expect(host.configReads.dwords(Self.gh200) == 0)
        let gpu = try #require(inventory.snapshot.gpu(Self.gh200.description))
        #expect(gpu.describedFrom == .sysfs)
        #expect(gpu.memory == nil)
        #expect(gpu.state == .notReady)
        #expect(gpu.readinessProbe == .nvgraceBAR0)
        #expect(gpu.vendorId == "0x10de" && gpu.driver != nil)
        let answer = try await service.get("/gpus/\(Self.gh200)")
        #expect(answer.text.contains(#""describedFrom":"sysfs""#), "\(answer.text)")
    }
}
