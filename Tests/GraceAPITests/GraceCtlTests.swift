import BuildInfo
import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// gracectl, the binary, against a running service.
@Suite("gracectl", .serialized)
struct GraceCtlTests {
    func gracectl(_ service: RunningService, _ arguments: String...) async throws -> (
        status: Int32, output: String
    ) {
        let command =
            [ChildProcess.binary("gracectl")] + arguments + [
                "--server", "127.0.0.1:\(service.application.port!)",
            ]
        let folder = service.simulated.folder
        return try await offPool { try ChildProcess.run(command, in: folder) }
    }

    @Test("graced --version and gracectl --version name the release and the revision built in")
    func versions() async throws {
        for name in ["graced", "gracectl"] {
            let (status, output) = try await offPool {
                try ChildProcess.run([ChildProcess.binary(name), "--version"], in: "/tmp")
            }
            #expect(status == 0)
            #expect(output == "\(name) \(BuildInfo.version) (\(BuildInfo.revision))\n", "\(output)")
        }
        // Built in a git checkout, the revision is its commit, never the fallback.
        #expect(BuildInfo.revision != "unknown")
        #expect(BuildInfo.revision.prefix(7).allSatisfy(\.isHexDigit) && BuildInfo.revision.count >= 7)
    }

    @Test("the release has one source: openapi.yaml's info.version is BuildInfo.version")
    func oneVersion() throws {
        let document = try ContractTests.openAPIFile()
        #expect(document.contains("\ninfo:\n  title: GraceAPI\n  version: \(BuildInfo.version)\n"))
    }

    @Test("gpus lists the six GPUs as a table")
    func listsGPUs() async throws {
        let service = try await RunningService.start()
        let (status, output) = try await gracectl(service, "gpus")
        #expect(status == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("BDF") == true && lines.count == 7)
        #expect(lines.contains { $0.hasPrefix("0009:01:00.0") && $0.contains("nvgrace-bar0") })
    }

    @Test("reset follows the job's phases and exits 0 when it succeeds")
    func resetFollows() async throws {
        let service = try await RunningService.start()
        try await service.setFaults("0000:c3:00.0", #"{"readyAfterMs": 50}"#)
        let (status, output) = try await gracectl(service, "reset", "0000:c3:00.0")
        #expect(status == 0, "\(output)")
        for phase in ["queued", "resetting", "waiting_ready", "verifying", "succeeded"] {
            #expect(output.contains(phase), "\(phase) missing from: \(output)")
        }
        #expect(output.contains("readiness: pci ready"))
    }

    @Test("a refusal exits 1 with the problem and what to do")
    func refusal() async throws {
        let service = try await RunningService.start()
        let (status, output) = try await gracectl(service, "reset", "0000:c3:00.0", "--method", "bus")
        #expect(status == 1)
        #expect(output.contains("0000:c3:00.1") && output.contains("what to do:"))
    }

    @Test("watch prints one line per event, resumes with --after and ends with --seconds")
    func watchPrintsEvents() async throws {
        struct Phase: Encodable { var phase: String }
        let service = try await RunningService.start()
        let hub = service.application.events
        let first = hub.publish(
            type: .jobPhase, gpu: "0000:c3:00.0", job: "j-1", payload: Phase(phase: "resetting"))
        hub.publish(type: .jobQueued, gpu: "0000:c3:00.0", job: "j-2", payload: Phase(phase: "ignored"))
        let second = hub.publish(type: .jobPhase, job: "j-1", payload: Phase(phase: "verifying"))
        let (status, output) = try await gracectl(
            service, "watch", "--after", "0", "--types", "job.phase", "--seconds", "1")
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(output)")
        #expect(lines.first?.hasPrefix("\(first.id!) \(first.at) job.phase 0000:c3:00.0 j-1 ") == true)
        #expect(lines.first?.hasSuffix(#"{"phase":"resetting"}"#) == true)
        #expect(lines.last == "\(second.id!) \(second.at) job.phase - j-1 {\"phase\":\"verifying\"}")

        let (refused, message) = try await gracectl(service, "watch", "--types", "job.bogus")
        #expect(refused == 1)
        #expect(message.contains("job.bogus") && message.contains("what to do:"))
    }
}
