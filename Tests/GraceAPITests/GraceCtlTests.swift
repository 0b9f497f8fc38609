import Testing

@testable import GraceAPI

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

    @Test("gpus lists the six GPUs as a table")
    func listsGPUs() async throws {
        let service = try RunningService()
        let (status, output) = try await gracectl(service, "gpus")
        #expect(status == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("BDF") == true && lines.count == 7)
        #expect(lines.contains { $0.hasPrefix("0009:01:00.0") && $0.contains("nvgrace-bar0") })
    }

    @Test("reset follows the job's phases and exits 0 when it succeeds")
    func resetFollows() async throws {
        let service = try RunningService()
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
        let service = try RunningService()
        let (status, output) = try await gracectl(service, "reset", "0000:c3:00.0", "--method", "bus")
        #expect(status == 1)
        #expect(output.contains("0000:c3:00.1") && output.contains("what to do:"))
    }
}
