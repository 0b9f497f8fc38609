import FoundationEssentials
import Passthrough
import PassthroughSimulator
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// `POST /gpus/{bdf}/reset` with `method: escalate`, on the simulator through HTTP: each path of the
/// ladder.
@Suite("Escalating resets", .serialized)
struct EscalationTests {
    static let gh200 = "0009:01:00.0"
    static let cxl = "0008:01:00.0"
    static let h100 = "0000:c3:00.0"

    struct DryRunBody: Decodable {
        struct Ladder: Decodable {
            struct Rung: Decodable {
                var step: String
                var method: String?
                var allowed: Bool
                var reason: String
            }
            var rungs: [Rung]
        }
        var wouldRun: Bool
        var ladder: Ladder?
    }

    @Test("flr brings the GPU back: one rung, succeeded")
    func flrWorks() async throws {
        let service = try await RunningService.start()
        let job = try await service.submit(Self.gh200, "reset", body: #"{"method": "escalate"}"#)
        #expect(job.method.requested == "escalate")
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        #expect(done.rungs?.map(\.method) == ["flr"] && done.rungs?.first?.outcome == "recovered")
        #expect(done.method.used == "flr")
        #expect(done.attempts.contains { $0.message.contains("/reset <-") })
        #expect(try await service.gpu(Self.gh200).state == "ready")
    }

    @Test("flr ineffective: the bus reset brings it back; the flr rung says why it did not")
    func flrIneffectiveThenBus() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.cxl, #"{"ineffectiveMethods": ["flr"], "readyAfterMs": 0}"#)
        let job = try await service.submit(
            Self.cxl, "reset", body: #"{"method": "escalate", "deadlineSeconds": 6}"#)
        let done = try await service.waitForJob(job.id, timeout: .seconds(20))
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        let rungs = try #require(done.rungs)
        #expect(rungs.map(\.method) == ["flr", "bus"])
        #expect(rungs.map(\.outcome) == ["not_ready", "recovered"])
        #expect(rungs.allSatisfy { $0.endedAt != nil })
        // Each rung's reset is an attempt; the bus rung narrowed reset_method first.
        #expect(done.attempts.filter { $0.message.contains("/reset <-") }.count == 2)
        #expect(done.attempts.contains { $0.message.contains("reset_method <- \"bus\"") })
        // reset_method was put back.
        let methods = try String(
            contentsOfFile: service.simulated.root.path + "/bus/pci/devices/\(Self.cxl)/reset_method",
            encoding: .utf8)
        #expect(methods == "flr bus\n")
        #expect(try await service.gpu(Self.cxl).state == "ready")
    }

    @Test("a GH200 never gets a bus reset: remove and rescan brings it back, on its driver again")
    func gh200RemoveRescan() async throws {
        let service = try await RunningService.start()
        let dry = try await service.send(
            "POST", "/gpus/\(Self.gh200)/reset", body: #"{"method": "escalate", "dryRun": true}"#)
        #expect(dry.status == 200)
        let plan = try dry.decode(DryRunBody.self)
        #expect(plan.wouldRun)
        let bus = try #require(plan.ladder?.rungs.first { $0.step == "bus_reset" })
        #expect(!bus.allowed && bus.reason.contains("must never get a bus reset"))
        #expect(plan.ladder?.rungs.map(\.allowed) == [true, false, true, true])

        try await service.setFaults(Self.gh200, #"{"recoversOnlyAfterRescan": true}"#)
        let job = try await service.submit(
            Self.gh200, "reset", body: #"{"method": "escalate", "deadlineSeconds": 4}"#)
        let done = try await service.waitForJob(job.id, timeout: .seconds(20))
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "") \(done.notes)")
        #expect(done.rungs?.map(\.method) == ["flr", "remove+rescan"])
        #expect(done.rungs?.map(\.outcome) == ["not_ready", "recovered"])
        #expect(done.phases.map(\.name).contains("rescanning"))
        #expect(done.attempts.contains { $0.message.contains("/remove <-") })
        #expect(done.attempts.contains { $0.message.contains("bus/pci/devices/0009:00:00.0/rescan <-") })
        // The rescan gave it its boot-time driver; the job bound it back.
        let gpu = try await service.gpu(Self.gh200)
        #expect(gpu.driver == "nvgrace_gpu_vfio_pci" && gpu.state == "ready")
        // No write ever narrowed reset_method to a bus method.
        #expect(
            !service.simulated.kernel.writes.contains { $0.write == .resetMethod(BDF(Self.gh200)!, "bus") })
    }

    @Test("nothing works: needs_reboot, which a rescan keeps and a later successful reset lifts")
    func needsReboot() async throws {
        let service = try await RunningService.start()
        try await service.setFaults(Self.gh200, #"{"neverReady": true}"#)
        let job = try await service.submit(
            Self.gh200, "reset", body: #"{"method": "escalate", "deadlineSeconds": 3}"#)
        let done = try await service.waitForJob(job.id, timeout: .seconds(20))
        #expect(done.state == "failed")
        #expect(done.rungs?.map(\.method) == ["flr", "remove+rescan"])
        #expect(done.rungs?.allSatisfy { $0.outcome == "not_ready" } == true)
        let error = try #require(done.error)
        #expect(error.type.hasSuffix("/needs-reboot") && error.resolution.contains("power-cycle"))
        #expect(try await service.gpu(Self.gh200).state == "needs_reboot")
        try await service.refresh()
        #expect(try await service.gpu(Self.gh200).state == "needs_reboot")

        // A plain reset that fails leaves the verdict; one that succeeds lifts it.
        try await service.setFaults(Self.gh200, #"{"neverReady": false}"#)
        let again = try await service.submit(Self.gh200, "reset", body: #"{"method": "flr"}"#)
        let fixed = try await service.waitForJob(again.id, timeout: .seconds(20))
        #expect(fixed.state == "succeeded", "\(fixed.error?.detail ?? "")")
        #expect(try await service.gpu(Self.gh200).state == "ready")
    }

    @Test("needs_reboot outlives a restart of graced, not a reboot of the host")
    func needsRebootAcrossRestarts() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-reboot-verdict")
        defer { try? host.removeFiles() }
        let database = host.folder + "/graced.sqlite"
        do {
            let first = try await RunningService.start(databasePath: database, host: host, removesHost: false)
            try await first.setFaults(Self.gh200, #"{"neverReady": true}"#)
            let job = try await first.submit(
                Self.gh200, "reset", body: #"{"method": "escalate", "deadlineSeconds": 3}"#)
            #expect(try await first.waitForJob(job.id, timeout: .seconds(20)).state == "failed")
            #expect(try await first.gpu(Self.gh200).state == "needs_reboot")
            await first.stop()
        }
        // graced restarts (an upgrade, a crash): the GPU is still given up on, whatever it reads now.
        try host.kernel.setFaults(SimulatorFaults(neverReady: false), for: BDF(Self.gh200)!)
        do {
            let second = try await RunningService.start(
                databasePath: database, host: host, removesHost: false)
            #expect(try await second.gpu(Self.gh200).state == "needs_reboot")
            try await second.refresh()
            #expect(try await second.gpu(Self.gh200).state == "needs_reboot")
            await second.stop()
        }
        // The host is power-cycled: the verdict is lifted, and forgotten.
        try host.kernel.simulateReboot()
        let third = try await RunningService.start(databasePath: database, host: host, removesHost: false)
        #expect(try await third.gpu(Self.gh200).state != "needs_reboot")
        #expect(try GraceStore(path: database).rebootVerdicts().isEmpty)
        await third.stop()
    }

    @Test("the dry run of a GPU with a held sibling: the bus rung is not allowed, and says why")
    func dryRunHeldSibling() async throws {
        let service = try await RunningService.start()
        let dry = try await service.send(
            "POST", "/gpus/\(Self.h100)/reset", body: #"{"method": "escalate", "dryRun": true}"#)
        #expect(dry.status == 200)
        let plan = try dry.decode(DryRunBody.self)
        let rungs = try #require(plan.ladder?.rungs)
        #expect(rungs.map(\.step) == ["function_reset", "bus_reset", "remove_rescan", "reboot"])
        #expect(rungs[1].allowed == false && rungs[1].reason.contains("snd_hda_intel"))
        #expect(service.simulated.kernel.writes.isEmpty)
        // A plain reset's dry run has no ladder.
        let plain = try await service.send("POST", "/gpus/\(Self.h100)/reset", body: #"{"dryRun": true}"#)
        #expect(try plain.decode(DryRunBody.self).ladder == nil)
        #expect(plain.text.contains(#""ladder":null"#))
    }
}
