import FoundationEssentials
import GraceSimulation
import GraceTestSupport
import Logging
import Passthrough
import PassthroughSimulator
import Store
import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// A running service on an ephemeral port over a fresh simulated host and a fresh database.
///
/// Starting and stopping an `Application` block (scans, synced writes, waiting for workers and for
/// the HTTP server's threads), so neither runs on Swift's cooperative pool: tests make one with
/// `RunningService.start(...)`, stop one with `await stop()`, and the last reference going away
/// hands the stop to `BlockingTeardowns`.
final class RunningService: @unchecked Sendable {
    let simulated: SimulatedHost
    let application: Application
    let client: RawHTTPClient
    let databasePath: String
    /// Whether the simulated host's files go with the service (false: a later service restarts on it).
    let removesHost: Bool

    /// Extra cleanups, run on the teardown's thread after the service has stopped.
    private let cleanups = Mutex<[@Sendable () -> Void]>([])

    /// Builds and starts the service on a thread of its own (see `init`).
    static func start(
        simulate: Bool = true, firmware: FirmwareMemoryTable? = nil, databasePath: String? = nil,
        server: HTTPServer.Configuration? = nil, host simulatedHost: SimulatedHost? = nil,
        jobs: JobEngine.Configuration = .init(), events: EventHub.Configuration = .init(),
        removesHost: Bool = true
    ) async throws -> RunningService {
        try await offPool {
            try RunningService(
                simulate: simulate, firmware: firmware, databasePath: databasePath, server: server,
                host: simulatedHost, jobs: jobs, events: events, removesHost: removesHost)
        }
    }

    /// Without `server`: one loopback listener where every caller is an admin and changes are not
    /// rate-limited, for tests of what lies behind the edge. Without `host`: a fresh demo host (a
    /// host given is deleted with the service). Blocks: call it through `start` from async code.
    init(
        simulate: Bool = true, firmware: FirmwareMemoryTable? = nil, databasePath: String? = nil,
        server: HTTPServer.Configuration? = nil, host simulatedHost: SimulatedHost? = nil,
        jobs: JobEngine.Configuration = .init(), events: EventHub.Configuration = .init(),
        removesHost: Bool = true
    ) throws {
        self.removesHost = removesHost
        simulated = try simulatedHost ?? SimulatedHost.createTemporary(prefix: "graceapi-svctest")
        self.databasePath = databasePath ?? simulated.folder + "/graced.sqlite"
        let host = ServiceHost.simulated(simulated, firmware: firmware, faultRoutes: simulate)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        application = try Application(
            host: host, store: try GraceStore(path: self.databasePath), server: server ?? Self.openLoopback(),
            rescanIntervalSeconds: 0, healthIntervalSeconds: 0, jobs: jobs, events: events, logger: logger)
        try application.start()
        client = RawHTTPClient(port: try #require(application.port))
    }

    static func openLoopback() -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration.loopback()
        configuration.maxBodyBytes = 64 << 10
        configuration.edge.mutationsPerMinute = 0
        return configuration
    }

    func get(_ target: String, headers: [(String, String)] = []) async throws -> RawHTTPClient.Response {
        let client = client
        return try await offPool { try client.request("GET", target, headers: headers) }
    }

    func send(
        _ method: String, _ target: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws -> RawHTTPClient.Response {
        let client = client
        let all = [("Content-Type", "application/json")] + headers
        return try await offPool { try client.request(method, target, headers: all, body: body ?? []) }
    }

    func send(
        _ method: String, _ target: String, body: String, headers: [(String, String)] = []
    ) async throws -> RawHTTPClient.Response {
        try await send(method, target, body: Array(body.utf8), headers: headers)
    }

    /// Stops the application (it blocks) on a thread of its own; the files stay until the last
    /// reference goes.
    func stop() async {
        let application = application
        await offPool { application.stop() }
    }

    /// Runs `cleanup` after the service has stopped, when it is torn down.
    func addCleanup(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.withLock { $0.append(cleanup) }
    }

    deinit {
        let application = application
        let simulated = simulated
        let removesHost = removesHost
        let cleanups = cleanups.withLock { $0 }
        BlockingTeardowns.shared.run {
            application.stop()
            for cleanup in cleanups { cleanup() }
            if removesHost { try? simulated.removeFiles() }
        }
    }
}

extension RawHTTPClient.Response {
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(body))
    }

    /// The body as an RFC 9457 problem, checking the media type and the members every problem has.
    func problem() throws -> ProblemBody {
        #expect(header("Content-Type") == "application/problem+json")
        let problem = try decode(ProblemBody.self)
        #expect(problem.status == status)
        #expect(!problem.resolution.isEmpty && !problem.detail.isEmpty && !problem.title.isEmpty)
        return problem
    }
}

struct ProblemBody: Decodable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var resolution: String
}

struct GPUListBody: Decodable {
    var items: [GPUDevice]
}
