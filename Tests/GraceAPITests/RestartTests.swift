import FoundationEssentials
import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP
@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon as a separate process, so a test can kill it the hard way.
final class GracedProcess: @unchecked Sendable {
    static let binary: String = ContractTests.repositoryRoot + "/.build/debug/graced"

    let pid: pid_t
    let port: UInt16
    let logPath: String
    let client: RawHTTPClient

    /// `access` replaces the default `--no-auth` (loopback, every caller admin), e.g. with `--tokens FILE`;
    /// `launcher` goes before the binary (e.g. a shell that lowers a limit first).
    init(
        database: String, logPath: String, access: [String] = ["--no-auth"], launcher: [String] = []
    ) throws {
        port = try Self.freePort()
        self.logPath = logPath
        let arguments =
            launcher + [
                Self.binary, "--simulate", "--db", database, "--listen", "127.0.0.1:\(port)",
                "--rescan-interval",
                "0",
            ] + access
        pid = try ChildProcess.spawn(arguments, output: logPath)
        client = RawHTTPClient(port: port)
    }

    /// Waits until the daemon answers `/healthz`.
    func waitUntilServing() async throws {
        let client = client
        for _ in 0..<300 {
            let response = await offPool { try? client.request("GET", "/healthz") }
            if let status = response?.status, status == 200 || status == 401 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("graced did not start serving; its log: \(log)")
    }

    var log: String {
        String(
            decoding: (try? SysfsRoot(path: "/").readBytes(String(logPath.dropFirst()))) ?? [], as: UTF8.self)
    }

    /// The folder of the simulated host, from the log line that announces it.
    var simulatorFolder: String? {
        let marker = "simulated host in "
        guard let line = log.split(separator: "\n").first(where: { $0.contains(marker) }),
            let path = line.split(separator: " ").last, path.hasSuffix("/sys")
        else { return nil }
        return String(path.dropLast(4))
    }

    /// Sends `signal` and waits (off the cooperative pool) for the daemon to exit.
    func kill(_ signal: Int32) async {
        Glibc.kill(pid, signal)
        let pid = pid
        _ = await offPool { ChildProcess.wait(pid) }
    }

    /// For a `defer`, which cannot wait: sends `signal` and hands the wait for the daemon's exit,
    /// then `cleanup`, to `BlockingTeardowns`.
    func killInTeardown(_ signal: Int32, then cleanup: @escaping @Sendable () -> Void = {}) {
        Glibc.kill(pid, signal)
        let pid = pid
        BlockingTeardowns.shared.run {
            _ = ChildProcess.wait(pid)
            cleanup()
        }
    }

    /// Sends `signal` without waiting (SIGHUP: the daemon goes on).
    func signal(_ signal: Int32) {
        Glibc.kill(pid, signal)
    }

    func request(_ method: String, _ target: String, body: String? = nil) async throws
        -> RawHTTPClient.Response
    {
        let client = client
        return try await offPool { try client.request(method, target, body: body.map { Array($0.utf8) }) }
    }

    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw KernelError(code: errno, path: "socket") }
        return UInt16(bigEndian: address.sin_port)
    }
}

@Suite("Restart", .serialized)
struct RestartTests {
    @Test("a daemon killed mid-job leaves the job interrupted; the history survives the restart")
    func killedMidJob() async throws {
        let folder = try SimulatedHost.createTemporary(prefix: "graceapi-restart")
        defer { try? folder.removeFiles() }
        let database = folder.folder + "/graced.sqlite"
        let gpu = "0009:01:00.0"

        let first = try GracedProcess(database: database, logPath: folder.folder + "/first.log")
        defer { first.simulatorFolder.map { try? TreeFilesCleanup.remove($0) } }
        try await first.waitUntilServing()
        // One reset that finishes, then one that never will.
        _ = try await first.request("PUT", "/simulator/devices/\(gpu)/faults", body: #"{"readyAfterMs": 10}"#)
        let finished = try await first.request("POST", "/gpus/\(gpu)/reset").decode(JobView.self)
        var job = finished
        for _ in 0..<500 where !["succeeded", "failed", "timed_out"].contains(job.state) {
            try await Task.sleep(for: .milliseconds(10))
            job = try await first.request("GET", "/jobs/\(finished.id)").decode(JobView.self)
        }
        #expect(job.state == "succeeded")
        _ = try await first.request("PUT", "/simulator/devices/\(gpu)/faults", body: #"{"neverReady": true}"#)
        let running = try await first.request("POST", "/gpus/\(gpu)/reset").decode(JobView.self)
        for _ in 0..<500 {
            let now = try await first.request("GET", "/jobs/\(running.id)").decode(JobView.self)
            if now.phase == "waiting_ready" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        await first.kill(SIGKILL)

        let second = try GracedProcess(database: database, logPath: folder.folder + "/second.log")
        defer {
            second.killInTeardown(SIGTERM) {
                second.simulatorFolder.map { try? TreeFilesCleanup.remove($0) }
            }
        }
        try await second.waitUntilServing()
        let interrupted = try await second.request("GET", "/jobs/\(running.id)").decode(JobView.self)
        #expect(interrupted.state == "interrupted")
        // It says where it stopped and what it had done: each phase and attempt was recorded as it
        // happened, not only at the edges.
        #expect(interrupted.phase == "interrupted")
        #expect(
            interrupted.phases.map(\.name) == [
                "queued", "quiescing", "resetting", "waiting_ready", "interrupted",
            ])
        #expect(interrupted.phases.allSatisfy { $0.endedAt != nil })
        #expect(interrupted.attempts.count == 1 && interrupted.attempts.first?.returnedAt != nil)
        #expect(interrupted.attempts.first?.message.contains("reset") == true)
        #expect(interrupted.error?.type.hasSuffix("/interrupted") == true)
        #expect(interrupted.error?.detail.contains("waiting_ready") == true)
        // The power control it had set to `on` was put back at the restart.
        #expect(interrupted.notes.contains { $0.contains("after the restart: put back power/control=auto") })
        let history = try await second.request("GET", "/gpus/\(gpu)/resets").decode(JobPage.self)
        #expect(history.items.map(\.id) == [running.id, finished.id])
        #expect(history.items.map(\.state) == ["interrupted", "succeeded"])
        // The GPU was re-probed at startup and can be reset again.
        let again = try await second.request("POST", "/gpus/\(gpu)/reset")
        #expect(again.status == 202)
    }
}

struct JobPage: Decodable {
    var items: [JobView]
    var next: String?
}

/// Removes a simulated host's folder left by a daemon that was killed.
enum TreeFilesCleanup {
    static func remove(_ folder: String) throws {
        try TreeFiles(root: SysfsRoot(path: folder)).removeTree("")
    }
}
