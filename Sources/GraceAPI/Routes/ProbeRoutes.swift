import GraceHTTP
import Passthrough

/// `GET /livez` and `GET /readyz`: the probes a cluster calls, the only routes that need no
/// credentials (a kubelet's `httpGet` carries no token). Each answers a status and a short reason,
/// never anything about the host: an anonymous caller learns that graced is up, and no more.
enum ProbeRoutes {
    struct Answer: Encodable, Equatable {
        /// `ok`, or `not_ready`.
        var status: String
        /// Why graced is not ready; null when it is.
        @NullEncodable var reason: String?
    }

    /// What readiness depends on, read at each probe.
    struct Conditions: Equatable {
        /// 0 until the first scan of the host has been published.
        var inventoryTakenAtMs: Int64
        /// Job records waiting for the disk: the store is not taking writes.
        var pendingJobRecords: Int
        /// False once graced has begun to stop.
        var acceptingJobs: Bool
    }

    /// Ready when the inventory has been taken, the store takes writes and jobs are accepted; the
    /// first condition that fails is the reason.
    static func readiness(_ conditions: Conditions) -> (status: Int, answer: Answer) {
        let reason: String? =
            if conditions.inventoryTakenAtMs == 0 {
                "inventory not taken yet"
            } else if !conditions.acceptingJobs {
                "shutting down"
            } else if conditions.pendingJobRecords > 0 {
                "store not writable"
            } else {
                nil
            }
        guard let reason else { return (200, Answer(status: "ok", reason: nil)) }
        return (503, Answer(status: "not_ready", reason: reason))
    }

    static func register(in router: inout Router, inventory: InventoryService, engine: JobEngine) {
        let headers = [("Cache-Control", "no-store")]
        let alive = HTTPResponse.json(Answer(status: "ok", reason: nil), headers: headers)
        router.getWithoutCredentials("/livez") { _, _ in .respond(alive) }
        router.getWithoutCredentials("/readyz") { _, _ in
            let (status, answer) = readiness(
                Conditions(
                    inventoryTakenAtMs: inventory.snapshot.takenAtMs,
                    pendingJobRecords: engine.recorder.health.pendingJobs,
                    acceptingJobs: engine.load.accepting))
            return .respond(HTTPResponse.json(answer, status: status, headers: headers))
        }
    }
}
