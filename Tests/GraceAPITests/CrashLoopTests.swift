import FoundationEssentials
import GraceTestSupport
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP
@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// graced killed with SIGKILL at random moments of reset, bind and unbind jobs, twenty times over
/// one database. After each kill the database passes its integrity check (opened read-only before
/// the restart); after each restart every job answered 202 is there exactly once, interrupted jobs
/// say where they stopped, and every function is back on its desired driver.
///
/// Each `graced --simulate` builds a fresh simulated host, so "back on its desired driver" is checked
/// on the new daemon's host: the desired bindings survive in the database and the reconcile at
/// startup applies them to a host that starts with the demo drivers.
@Suite("Crash loop", .serialized)
struct CrashLoopTests {
    static let rounds = 20
    /// GH200s (two on nvgrace_gpu_vfio_pci, two on nvidia) and the CXL GPU.
    static let gpus = ["0009:01:00.0", "0019:01:00.0", "0029:01:00.0", "0039:01:00.0", "0008:01:00.0"]

    struct JobsPage: Decodable {
        var items: [JobView]
    }

    struct BindingsBody: Decodable {
        struct Item: Decodable {
            var bdf: String
            var desiredDriver: String?
            var currentDriver: String?
            var holds: Bool
            var status: String
        }
        var items: [Item]
    }

    @Test("SIGKILL at random moments of jobs, twenty times over one database")
    func crashLoop() async throws {
        let folder = try SimulatedHost.createTemporary(prefix: "graceapi-crashloop")
        defer { try? folder.removeFiles() }
        let database = folder.folder + "/graced.sqlite"
        let seed = UInt64(Timestamp.nowMs())
        var random = SplitMix64(state: seed)
        var accepted: [String] = []
        var interruptedSeen = 0

        // One round more than kills: the last only restarts and checks.
        for round in 0...Self.rounds {
            let label = "round \(round), seed \(seed)"
            let daemon = try GracedProcess(database: database, logPath: folder.folder + "/round\(round).log")
            defer { daemon.simulatorFolder.map { try? TreeFilesCleanup.remove($0) } }
            try await daemon.waitUntilServing()

            // After the restart: every accepted job is there, the interrupted ones say where they
            // stopped, and the desired bindings hold again.
            for id in accepted {
                let answer = try await daemon.request("GET", "/jobs/\(id)")
                #expect(answer.status == 200, "\(label): job \(id) lost")
                guard answer.status == 200 else { continue }
                let job = try answer.decode(JobView.self)
                #expect(!["queued", "running"].contains(job.state), "\(label): \(id) still \(job.state)")
                if job.state == "interrupted" {
                    interruptedSeen += 1
                    // Its phases close with the outcome; the one it was in is named in the error.
                    #expect(job.phases.last?.name == job.phase, "\(label): \(id)")
                    #expect(job.phase == "interrupted", "\(label): \(id) phase \(job.phase)")
                    let stoppedIn = job.phases.dropLast().last?.name ?? ""
                    #expect(!stoppedIn.isEmpty, "\(label): \(id)")
                    #expect(
                        job.error?.detail.contains("in its \(stoppedIn) phase") == true, "\(label): \(id)")
                }
            }
            let desired = try await waitForDesiredBindings(daemon, label: label)
            if round == Self.rounds {
                // Binds and unbinds succeeded along the way, so some bindings are kept.
                #expect(desired > 0, "\(label)")
                await daemon.kill(SIGTERM)
                break
            }

            // Work: a few jobs on random GPUs, then a kill at a random moment.
            for gpu in Self.gpus {
                let faults =
                    #"{"readyAfterMs": \#(Int.random(in: 100...1500, using: &random)), "resetWriteMs": \#(Int.random(in: 0...80, using: &random))}"#
                _ = try await daemon.request("PUT", "/simulator/devices/\(gpu)/faults", body: faults)
            }
            for _ in 0..<Int.random(in: 2...5, using: &random) {
                let gpu = Self.gpus.randomElement(using: &random)!
                let (kind, body) = [
                    ("reset", "{}"), ("reset", #"{"method": "escalate"}"#), ("bind", "{}"),
                    ("unbind", "{}"), ("unbind", #"{"driver": "nvidia"}"#),
                ].randomElement(using: &random)!
                let answer = try await daemon.request("POST", "/gpus/\(gpu)/\(kind)", body: body)
                if answer.status == 202 {
                    accepted.append(try answer.decode(JobView.self).id)
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...150, using: &random)))
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...600, using: &random)))
            await daemon.kill(SIGKILL)

            // Before the restart: the database as the killed daemon left it.
            let left = try Database(path: database, readOnly: true)
            #expect(try left.scalar("PRAGMA integrity_check") == .text("ok"), "\(label)")
            for id in accepted {
                let count = try left.scalar("SELECT count(*) FROM jobs WHERE id = ?", [.text(id)])
                #expect(count == .integer(1), "\(label): job \(id) stored \(String(describing: count)) times")
            }
        }
        #expect(accepted.count >= Self.rounds, "seed \(seed)")
        // With kills at random moments some jobs must have been caught mid-way.
        #expect(interruptedSeen > 0, "seed \(seed), \(accepted.count) jobs accepted")
    }

    /// Waits until every desired binding holds on this daemon's (fresh) host.
    /// Returns how many there are.
    private func waitForDesiredBindings(_ daemon: GracedProcess, label: String) async throws -> Int {
        var last: BindingsBody?
        for _ in 0..<500 {
            last = try await daemon.request("GET", "/bindings").decode(BindingsBody.self)
            if let items = last?.items, items.allSatisfy(\.holds) { return items.count }
            try await Task.sleep(for: .milliseconds(20))
        }
        let wrong = last?.items.filter { !$0.holds }.map {
            "\($0.bdf): \($0.currentDriver ?? "none") (desired \($0.desiredDriver ?? "none"), \($0.status))"
        }
        Issue.record("\(label): desired bindings do not hold: \(wrong ?? [])")
        return last?.items.count ?? 0
    }
}
