import FoundationEssentials
import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// A simulated service with access control as graced sets it up: a Unix socket owned by group
/// `nogroup` (whose members are operators), a loopback TCP listener that takes bearer tokens, and a
/// token for each role.
final class GuardedService: @unchecked Sendable {
    static let socketGroup: gid_t = 65534

    let service: RunningService
    let folder: String
    let socketPath: String
    let tokenPath: String
    let tokens: [Role: String]
    let tcp: RawHTTPClient
    let unix: RawHTTPClient

    /// Builds and starts the service on a thread of its own (starting blocks; see `RunningService`).
    static func start(
        mutationsPerMinute: Int = 0, headerTimeoutSeconds: Double = 10, maxBodyBytes: Int = 64 << 10,
        tls: HTTPServer.TLSMaterial? = nil, allowedOrigins: Set<String> = [], allowedHosts: Set<String> = [],
        connectionLimit: Int = 256, perClientConnectionLimit: Int = 32
    ) async throws -> GuardedService {
        try await offPool {
            try GuardedService(
                mutationsPerMinute: mutationsPerMinute, headerTimeoutSeconds: headerTimeoutSeconds,
                maxBodyBytes: maxBodyBytes, tls: tls, allowedOrigins: allowedOrigins,
                allowedHosts: allowedHosts, connectionLimit: connectionLimit,
                perClientConnectionLimit: perClientConnectionLimit)
        }
    }

    private init(
        mutationsPerMinute: Int, headerTimeoutSeconds: Double, maxBodyBytes: Int,
        tls: HTTPServer.TLSMaterial?, allowedOrigins: Set<String>, allowedHosts: Set<String>,
        connectionLimit: Int, perClientConnectionLimit: Int
    ) throws {
        // A folder anyone may traverse, so that a process of another user reaches the socket and
        // only the socket's own mode decides.
        folder = makeTemporaryFolder("/tmp/graced-guarded-XXXXXX")
        chmod(folder, 0o755)
        socketPath = folder + "/graced.sock"
        tokenPath = folder + "/tokens"
        var tokens: [Role: String] = [:]
        for role in Role.allCases {
            tokens[role] = try TokenFile.create(path: tokenPath, name: "test-\(role.rawValue)", role: role)
        }
        self.tokens = tokens
        let verifier = TokenVerifier(records: try TokenFile.load(path: tokenPath))
        let authenticator = Authenticator(
            configuration: .init(socketGroup: Self.socketGroup, socketGroupRole: .operator),
            tokens: verifier)
        let server = HTTPServer.Configuration(
            listeners: [
                .init(address: .unix(path: socketPath), unixGroup: Self.socketGroup),
                .init(address: .tcp(host: "127.0.0.1", port: 0), tls: tls),
            ],
            maxBodyBytes: maxBodyBytes, headerTimeoutSeconds: headerTimeoutSeconds,
            connectionLimit: connectionLimit, perClientConnectionLimit: perClientConnectionLimit,
            edge: EdgePolicy(
                allowedOrigins: allowedOrigins, allowedHosts: allowedHosts,
                mutationsPerMinute: mutationsPerMinute,
                authenticator: authenticator))
        service = try RunningService(server: server)
        tcp = RawHTTPClient(port: try #require(service.application.port))
        unix = RawHTTPClient(unixPath: socketPath)
        // Once the service has stopped (and removed its socket), its folder goes too.
        let (tokenPath, folder) = (tokenPath, folder)
        service.addCleanup {
            unlink(tokenPath)
            rmdir(folder)
        }
    }

    func bearer(_ role: Role) -> [(String, String)] {
        [("Authorization", "Bearer \(tokens[role]!)")]
    }

    /// One request over TCP (or the socket) with these headers; a body is sent as JSON.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: String? = nil,
        overSocket: Bool = false
    ) async throws -> RawHTTPClient.Response {
        let client = overSocket ? unix : tcp
        return try await offPool {
            try client.request(method, target, headers: headers, body: body.map { Array($0.utf8) })
        }
    }

    /// Runs `arguments` as another user (through setpriv); the output and exit status.
    func runAs(uid: uid_t, gid: gid_t, _ arguments: [String]) async throws -> (status: Int32, output: String)
    {
        let command =
            ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups"] + arguments
        let folder = folder
        return try await offPool { try ChildProcess.run(command, in: folder) }
    }

    /// curl over the Unix socket: the body then the status on the last line.
    static func curlOverSocket(_ socket: String, _ method: String, _ path: String, body: String? = nil)
        -> [String]
    {
        var command = ["/usr/bin/curl", "-s", "--unix-socket", socket, "-X", method, "-w", "\n%{http_code}"]
        if let body {
            command += ["-H", "Content-Type: application/json", "--data", body]
        }
        return command + ["http://localhost" + path]
    }

    /// Whether this process may act as another user (tests run as root in CI).
    static var canSwitchUsers: Bool {
        geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0 && access("/usr/bin/curl", X_OK) == 0
    }
}

extension String {
    /// The last line (curl's `-w` status) and everything before it.
    var splitStatus: (body: String, status: Int?) {
        guard let newline = lastIndex(of: "\n") else { return ("", Int(self)) }
        return (String(self[..<newline]), Int(self[index(after: newline)...]))
    }
}
