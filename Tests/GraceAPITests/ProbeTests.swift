import FoundationEssentials
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// `GET /livez` and `GET /readyz`: answered without credentials, with a status and a short reason
/// and nothing about the host.
@Suite("Probes", .serialized)
struct ProbeTests {
    /// The members an answer has, and its text: a probe may carry `status` and `reason`, no more.
    static func members(_ response: RawHTTPClient.Response) throws -> Set<String> {
        Set(try JSONDecoder().decode([String: String?].self, from: Data(response.body)).keys)
    }

    @Test("without credentials: /livez is 200 ok and /readyz 200 once started; other reads stay 401")
    func anonymousProbes() async throws {
        let guarded = try await GuardedService.start()
        for overSocket in [false, true] {
            for path in ["/livez", "/readyz"] {
                let response = try await guarded.request("GET", path, overSocket: overSocket)
                #expect(response.status == 200, "\(path): \(response.text)")
                #expect(response.header("Content-Type") == "application/json")
                #expect(response.header("Cache-Control") == "no-store")
                let answer = try response.decode(ProbeBody.self)
                #expect(answer.status == "ok" && answer.reason == nil)
                #expect(try Self.members(response) == ["status", "reason"])
            }
        }
        // The probes open nothing else: /healthz still wants a viewer.
        #expect(try await guarded.request("GET", "/healthz").status == 401)
        // HEAD, as for every GET.
        #expect(try await guarded.request("HEAD", "/livez").status == 200)
        // Credentials sent anyway are checked: a wrong token is still 401.
        let wrong = try await guarded.request(
            "GET", "/readyz",
            headers: [("Authorization", "Bearer grace_" + String(repeating: "0", count: 64))])
        #expect(wrong.status == 401)
    }

    @Test("the probes say nothing about the host, whatever its state")
    func noHostFacts() async throws {
        let guarded = try await GuardedService.start()
        let gpus = guarded.service.application.inventory.snapshot.gpus
        #expect(!gpus.isEmpty)
        for path in ["/livez", "/readyz"] {
            let text = try await guarded.request("GET", path).text
            for gpu in gpus {
                #expect(!text.contains(gpu.bdf) && !text.contains(gpu.deviceName))
            }
            #expect(!text.contains("simulat") && !text.contains("/tmp"))
        }
    }

    @Test(
        "readiness: not before the inventory, not while stopping, not while the store fails; the first cause is the reason"
    )
    func readinessConditions() {
        let ready = ProbeRoutes.Conditions(inventoryTakenAtMs: 1, pendingJobRecords: 0, acceptingJobs: true)
        #expect(ProbeRoutes.readiness(ready).status == 200)
        #expect(ProbeRoutes.readiness(ready).answer == .init(status: "ok", reason: nil))
        var before = ready
        before.inventoryTakenAtMs = 0
        before.acceptingJobs = false
        #expect(ProbeRoutes.readiness(before).status == 503)
        #expect(
            ProbeRoutes.readiness(before).answer
                == .init(status: "not_ready", reason: "inventory not taken yet"))
        var stopping = ready
        stopping.acceptingJobs = false
        #expect(ProbeRoutes.readiness(stopping).answer.reason == "shutting down")
        var failing = ready
        failing.pendingJobRecords = 2
        #expect(ProbeRoutes.readiness(failing).status == 503)
        #expect(ProbeRoutes.readiness(failing).answer.reason == "store not writable")
    }
}

struct ProbeBody: Decodable, Equatable {
    var status: String
    var reason: String?
}
