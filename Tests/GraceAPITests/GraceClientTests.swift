import FoundationEssentials
import GraceClient
import GraceTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// gracectl's side of access control: server addresses, the requests the client sends, and the words
/// gracectl finds for graced's refusals, against a stand-in for graced on a Unix socket.
@Suite("GraceClient")
struct GraceClientTests {
    static let token = "grace_" + String(repeating: "0123456789abcdef", count: 4)

    // MARK: Server addresses

    @Test(
        "server addresses that parse",
        arguments: [
            ("unix:/run/graced/graced.sock", GraceServer.unix(path: "/run/graced/graced.sock")),
            ("/tmp/g.sock", .unix(path: "/tmp/g.sock")),
            ("unix:///run/x.sock", .unix(path: "/run/x.sock")),
            ("unix:relative.sock", .unix(path: "relative.sock")),
            ("127.0.0.1:8080", .tcp(host: "127.0.0.1", port: 8080)),
            ("http://10.0.0.2:443", .tcp(host: "10.0.0.2", port: 443)),
            ("HTTP://10.0.0.2:443/", .tcp(host: "10.0.0.2", port: 443)),
            ("localhost:8080", .tcp(host: "localhost", port: 8080)),
            ("http://LocalHost:1", .tcp(host: "localhost", port: 1)),
            ("[::1]:8080", .tcp(host: "::1", port: 8080)),
            ("http://[fe80::1:2]:65535", .tcp(host: "fe80::1:2", port: 65535)),
            ("https://10.0.0.2:8443", .https(host: "10.0.0.2", port: 8443)),
            ("https://graced.example:8443/", .https(host: "graced.example", port: 8443)),
            ("https://[::1]:8443", .https(host: "::1", port: 8443)),
        ])
    func parses(text: String, expected: GraceServer) throws {
        let server = try GraceServer(parsing: text)
        #expect(server == expected)
        #expect(try GraceServer(parsing: server.description) == server)
    }

    @Test(
        "server addresses that do not parse say why, with examples",
        arguments: [
            ("", "empty"),
            ("127.0.0.1", "port is missing"),
            ("127.0.0.1:", "port is a number"),
            ("127.0.0.1:0", "port is a number"),
            ("127.0.0.1:65536", "port is a number"),
            ("127.0.0.1:+80", "port is a number"),
            ("127.0.0.1:http", "port is a number"),
            ("http://127.0.0.1:8080/v1", "has no path"),
            (":8080", "host is missing"),
            ("graced.example:8080", "looks no names up"),
            ("10.1:8080", "looks no names up"),
            ("::1:8080", "in brackets"),
            ("[::1]", "port is missing"),
            ("[::1:8080", "ends with ]"),
            ("[127.0.0.1]:80", "is not an IPv6 address"),
            ("ftp://127.0.0.1:21", "unix:, http:// and https:// only"),
            ("https://10.1:8443", "neither an IP address nor a DNS name"),
            ("https://bad_name.example:8443", "neither an IP address nor a DNS name"),
            ("unix:", "path is missing"),
            ("unix://run/x.sock", "absolute path"),
            ("unix:/" + String(repeating: "x", count: 107), "at most 107 bytes"),
        ])
    func rejects(text: String, reason: String) throws {
        let error = try #require(throws: GraceServer.ParseError.self) { try GraceServer(parsing: text) }
        #expect(error.description.contains(reason), "\(error)")
        #expect(error.description.contains("examples: unix:/run/graced/graced.sock"))
    }

    @Test("the Host header: the authority over TCP, localhost on a Unix socket")
    func hostHeader() {
        #expect(GraceServer.tcp(host: "127.0.0.1", port: 8080).hostHeader == "127.0.0.1:8080")
        #expect(GraceServer.tcp(host: "::1", port: 8080).hostHeader == "[::1]:8080")
        #expect(GraceServer.tcp(host: "::1", port: 8080).description == "http://[::1]:8080")
        #expect(GraceServer.standard.hostHeader == "localhost")
        #expect(GraceServer.standard.description == "unix:/run/graced/graced.sock")
    }

    // MARK: Requests

    @Test("a GET carries Host: localhost, no token, no Content-Type and no length")
    func plainGet() async throws {
        let graced = try FakeGraced(answer: FakeGraced.answer(200, body: #"{"items": []}"#))
        defer { graced.remove() }
        let client = BlockingHTTPClient(server: .unix(path: graced.socketPath))
        let response = try await offPool { try client.request("GET", "/gpus") }
        #expect(response.status == 200 && response.text == #"{"items": []}"#)
        #expect(response.header("content-type") == "application/json")
        let request = try #require(graced.requests.first)
        #expect(request.line == "GET /gpus HTTP/1.1")
        #expect(request.header("Host") == "localhost")
        #expect(request.header("Connection") == "close")
        #expect(request.header("Authorization") == nil)
        #expect(request.header("Content-Type") == nil && request.header("Content-Length") == nil)
    }

    @Test("a token goes out as Authorization: Bearer, and nowhere else")
    func bearer() async throws {
        let graced = try FakeGraced(answer: FakeGraced.answer(200, body: "{}"))
        defer { graced.remove() }
        let client = BlockingHTTPClient(server: .unix(path: graced.socketPath), token: Self.token)
        _ = try await offPool { try client.request("GET", "/jobs/1") }
        #expect(graced.requests.first?.header("Authorization") == "Bearer \(Self.token)")
        #expect(client.hasToken)
        var dumped = ""
        dump(client, to: &dumped)
        for shown in ["\(client)", String(reflecting: client), dumped] {
            #expect(!shown.contains(Self.token) && shown.contains("unix:\(graced.socketPath)"), "\(shown)")
        }
    }

    @Test("a body goes out as JSON with its length; a POST without one says Content-Length: 0")
    func bodies() async throws {
        let graced = try FakeGraced(answer: FakeGraced.answer(202, body: "{}"), connections: 3)
        defer { graced.remove() }
        let client = BlockingHTTPClient(server: .unix(path: graced.socketPath))
        try await offPool {
            _ = try client.request("POST", "/gpus/0000:c3:00.0/reset", body: #"{"method": "flr"}"#)
            _ = try client.request("POST", "/gpus/0000:c3:00.0/reset")
            _ = try client.request("DELETE", "/jobs/7")
        }
        let requests = graced.requests
        try #require(requests.count == 3)
        #expect(requests[0].header("Content-Type") == "application/json")
        #expect(requests[0].header("Content-Length") == "17" && requests[0].body == #"{"method": "flr"}"#)
        #expect(requests[1].header("Content-Type") == nil && requests[1].header("Content-Length") == "0")
        #expect(requests[2].line == "DELETE /jobs/7 HTTP/1.1")
        #expect(requests[2].header("Content-Type") == nil && requests[2].header("Content-Length") == nil)
    }

    @Test("a chunked answer is put together; Content-Length bounds the body")
    func framing() async throws {
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n"
        let graced = try FakeGraced(
            answer: chunked, then: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing bytes"])
        defer { graced.remove() }
        let client = BlockingHTTPClient(server: .unix(path: graced.socketPath))
        let (first, second) = try await offPool {
            (try client.request("GET", "/a"), try client.request("GET", "/b"))
        }
        #expect(first.text == #"{"a": 1}"#)
        #expect(second.text == "{}")
    }

    @Test("Retry-After in seconds")
    func retryAfter() {
        let response = BlockingHTTPClient.Response(status: 429, headers: [("retry-after", " 7")], body: [])
        #expect(response.retryAfterSeconds == 7)
        let date = BlockingHTTPClient.Response(
            status: 429, headers: [("Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT")], body: [])
        #expect(date.retryAfterSeconds == nil)
    }

    @Test("a token that could break the request is refused without being shown")
    func badToken() throws {
        let secret = "grace_abc\r\nX-Injected: 1"
        let client = BlockingHTTPClient(server: .unix(path: "/nonexistent/graced.sock"), token: secret)
        let error = try #require(throws: BlockingHTTPClient.ConnectionError.self) {
            try client.request("GET", "/gpus")
        }
        #expect(error.description.contains("bearer token") && !error.description.contains("grace_abc"))
    }

    @Test("no socket: is graced running?")
    func noSocket() throws {
        let folder = try FakeGraced.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let client = BlockingHTTPClient(server: .unix(path: folder + "/graced.sock"))
        let error = try #require(throws: BlockingHTTPClient.ConnectionError.self) {
            try client.request("GET", "/gpus")
        }
        #expect(error.code == ENOENT)
        #expect(error.description.contains("is graced running? (no socket at \(folder)/graced.sock)"))
    }

    @Test("a socket nobody listens on: is graced running?")
    func staleSocket() throws {
        let folder = try FakeGraced.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Bound and closed: the file stays, and connecting to it is refused.
        close(try FakeGraced.bind(folder + "/graced.sock", listening: false))
        let client = BlockingHTTPClient(server: .unix(path: folder + "/graced.sock"))
        let error = try #require(throws: BlockingHTTPClient.ConnectionError.self) {
            try client.request("GET", "/gpus")
        }
        #expect(error.code == ECONNREFUSED && error.description.contains("is graced running?"))
    }

    // MARK: gracectl's words for refusals

    @Test("401 without a token: the problem, what to do, and how to get a token")
    func unauthenticated() async throws {
        let graced = try FakeGraced(answer: Self.problem(401))
        defer { graced.remove() }
        let (status, output) = try await gracectl(graced, ["gpus"])
        #expect(status != 0)
        #expect(
            output.contains("graced refused the request: not authenticated (no credentials came with it)"))
        #expect(output.contains("what to do: connect over the Unix socket or send a bearer token"))
        #expect(output.contains("pass --token or set GRACE_TOKEN"))
        #expect(output.contains("`graced token create --name NAME --role operator`"))
    }

    @Test("401 with a token: sent, never printed, and no advice to pass one")
    func rejectedToken() async throws {
        let graced = try FakeGraced(answer: Self.problem(401))
        defer { graced.remove() }
        let (status, output) = try await gracectl(graced, ["gpus", "--token", Self.token])
        #expect(status != 0)
        #expect(graced.requests.first?.header("Authorization") == "Bearer \(Self.token)")
        #expect(output.contains("not authenticated") && !output.contains("pass --token"))
        #expect(!output.contains(Self.token))
    }

    @Test("401 with a token of the wrong form from GRACE_TOKEN: a hint, and still not the token")
    func malformedToken() async throws {
        let graced = try FakeGraced(answer: Self.problem(401))
        defer { graced.remove() }
        let truncated = String(Self.token.prefix(40))
        let (status, output) = try await gracectl(graced, ["gpus"], environment: ["GRACE_TOKEN=\(truncated)"])
        #expect(status != 0)
        #expect(graced.requests.first?.header("Authorization") == "Bearer \(truncated)")
        #expect(output.contains("the token from GRACE_TOKEN does not look like one graced makes"))
        #expect(!output.contains(truncated))
    }

    @Test("403: the role the operation needs and the caller's; the token from --token-file's first line")
    func forbidden() async throws {
        let graced = try FakeGraced(answer: Self.problem(403))
        defer { graced.remove() }
        let tokenFile = graced.folder + "/token"
        try Data((Self.token + "\nnot the token\n").utf8).write(to: URL(filePath: tokenFile))
        let (status, output) = try await gracectl(
            graced, ["reset", "0000:c3:00.0", "--token-file", tokenFile],
            environment: ["GRACE_TOKEN=grace_from_the_environment"])
        #expect(status != 0)
        #expect(graced.requests.first?.header("Authorization") == "Bearer \(Self.token)")
        #expect(
            output.contains(
                "graced refused the request: POST /gpus/0000:c3:00.0/reset needs the operator role, "
                    + "and you have the viewer role (viewers look, operators act)"))
        #expect(output.contains("what to do: ask an admin for an operator token"))
        #expect(!output.contains(Self.token))
    }

    @Test("429: when to retry")
    func tooManyRequests() async throws {
        let graced = try FakeGraced(answer: Self.problem(429, extraHeaders: "Retry-After: 7\r\n"))
        defer { graced.remove() }
        let (status, output) = try await gracectl(graced, ["jobs", "--token", Self.token])
        #expect(status != 0)
        #expect(output.contains("graced refused the request: too many requests; retry in 7 s"))
        #expect(!output.contains(Self.token))
    }

    @Test("--token wins over GRACE_TOKEN; GRACE_SERVER stands in for --server")
    func precedence() async throws {
        let graced = try FakeGraced(answer: FakeGraced.answer(200, body: #"{"items": []}"#))
        defer { graced.remove() }
        let (status, output) = try await gracectl(
            graced, ["gpus", "--token", Self.token], serverFlag: false,
            environment: ["GRACE_SERVER=unix:\(graced.socketPath)", "GRACE_TOKEN=grace_other"])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("BDF"))
        #expect(graced.requests.first?.header("Authorization") == "Bearer \(Self.token)")
    }

    @Test("no socket: gracectl asks whether graced runs")
    func gracectlWithoutGraced() async throws {
        let folder = try FakeGraced.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, output) = try await Self.gracectl(
            ["gpus", "--server", folder + "/none.sock"], in: folder)
        #expect(status == 1)
        #expect(output.contains("is graced running? (no socket at \(folder)/none.sock)"))
    }

    /// Runs as nobody when the tests run as root, who may open any socket.
    @Test(
        "a socket the user may not open: ask for its group, or use a token over TCP",
        .enabled(if: geteuid() != 0 || access("/usr/bin/setpriv", X_OK) == 0))
    func permissionDenied() async throws {
        let graced = try FakeGraced(answer: FakeGraced.answer(200, body: "{}"))
        defer { graced.remove() }
        chmod(graced.folder, 0o755)
        chmod(graced.socketPath, 0o600)
        let dropping =
            geteuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let (status, output) = try await Self.gracectl(
            ["gpus", "--server", graced.socketPath], prefix: dropping, in: graced.folder)
        #expect(status == 1)
        #expect(
            output.contains("your user cannot open \(graced.socketPath): ask for membership of its group"))
        #expect(output.contains("or use a token over TCP"))
    }

    // MARK: Helpers

    /// Runs gracectl against `graced`, named by --server unless `serverFlag` is false.
    func gracectl(
        _ graced: FakeGraced, _ arguments: [String], serverFlag: Bool = true, environment: [String] = []
    ) async throws -> (status: Int32, output: String) {
        let server = serverFlag ? ["--server", "unix:" + graced.socketPath] : []
        return try await Self.gracectl(arguments + server, environment: environment, in: graced.folder)
    }

    /// Runs gracectl with its output kept in `folder`, after `prefix` (setpriv, say). It sees GRACE_SERVER
    /// and GRACE_TOKEN only as `environment` sets them, whatever the shell running the tests has.
    static func gracectl(
        _ arguments: [String], environment: [String] = [], prefix: [String] = [], in folder: String
    ) async throws -> (status: Int32, output: String) {
        let command =
            ["/usr/bin/env", "-u", "GRACE_SERVER", "-u", "GRACE_TOKEN"] + environment + prefix
            + [ChildProcess.binary("gracectl")] + arguments
        return try await offPool { try ChildProcess.run(command, in: folder) }
    }

    static func problem(_ status: Int, extraHeaders: String = "") -> String {
        let (title, detail, resolution, extra) =
            switch status {
            case 401:
                (
                    "Not authenticated", "no credentials came with it",
                    "connect over the Unix socket or send a bearer token", ""
                )
            case 403:
                (
                    "Forbidden", "viewers look, operators act", "ask an admin for an operator token",
                    #", "requiredRole": "operator", "role": "viewer""#
                )
            default: ("Too many requests", "slow down", "wait, then try again", "")
            }
        let body = """
            {"type": "https://graced.dev/problems/\(status)", "title": "\(title)", "status": \(status), \
            "detail": "\(detail)", "resolution": "\(resolution)"\(extra)}
            """
        let authenticate = status == 401 ? "WWW-Authenticate: Bearer realm=\"graced\"\r\n" : ""
        return FakeGraced.answer(
            status, contentType: "application/problem+json", headers: authenticate + extraHeaders, body: body)
    }
}

/// A stand-in for graced on a Unix socket in a fresh folder: a thread answers each connection with the
/// next canned answer and keeps the requests it read.
final class FakeGraced: Sendable {
    struct Request: Sendable {
        var line: String
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    let folder: String
    let socketPath: String
    private let recorded = Mutex<[Request]>([])

    /// Answers `connections` connections with `answer`, or one each with `answer` and then `then`.
    init(answer: String, then: [String] = [], connections: Int? = nil) throws {
        folder = try Self.temporaryFolder()
        socketPath = folder + "/graced.sock"
        let listener = try Self.bind(socketPath, listening: true)
        let answers = [answer] + then
        let count = connections ?? answers.count
        startThread { [self] in
            defer { close(listener) }
            for index in 0..<count {
                // Bounded, so that a test that never connects does not leave the thread behind.
                var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 10_000) == 1 else { return }
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                if let request = Self.read(connection) {
                    recorded.withLock { $0.append(request) }
                }
                Self.send(connection, answers[min(index, answers.count - 1)])
                close(connection)
            }
        }
    }

    /// The requests read so far. The answer goes out after the request is kept, so a client that has its
    /// answer finds its request here.
    var requests: [Request] { recorded.withLock { $0 } }

    func remove() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    static func answer(
        _ status: Int, contentType: String = "application/json", headers: String = "", body: String
    ) -> String {
        "HTTP/1.1 \(status) Canned\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + headers + "Connection: close\r\n\r\n" + body
    }

    /// Short enough for `sun_path`, which a folder under a long TMPDIR might not be.
    static func temporaryFolder() throws -> String {
        makeTemporaryFolder("/tmp/grace-client-XXXXXX")
    }

    static func bind(_ path: String, listening: Bool) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXFailure("socket", errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, !listening || listen(fd, 8) == 0 else {
            let code = errno
            close(fd)
            throw POSIXFailure("bind/listen", code)
        }
        return fd
    }

    /// The request head and as much body as Content-Length promises.
    private static func read(_ fd: Int32) -> Request? {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        func headEnd() -> Int? {
            guard bytes.count >= 4 else { return nil }
            return (0...(bytes.count - 4)).first { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }
        }
        func fill() -> Bool {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            bytes += buffer[..<count]
            return true
        }
        while headEnd() == nil { guard fill() else { return nil } }
        let end = headEnd()!
        var lines = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n").map(String.init)
        let line = lines.removeFirst()
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
        }
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        while bytes.count < end + 4 + length { guard fill() else { break } }
        return Request(
            line: line, headers: headers,
            body: String(decoding: bytes[(end + 4)...].prefix(length), as: UTF8.self))
    }

    private static func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { return }
            sent += count
        }
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    let description: String
    init(_ call: String, _ code: Int32) { description = "\(call): \(String(cString: strerror(code)))" }
}
