import FoundationEssentials
import GraceTestSupport
import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end tests: a real server on 127.0.0.1 and an ephemeral port, spoken to over sockets.
@Suite struct HTTPServerTests {
    struct UploadSummary: Codable, Equatable {
        let count: Int
        let sum: Int
    }

    /// How many `/hang` requests reached their handler: from then on such a request is answered,
    /// by its task or by `stop()`, whatever the timing.
    final class HandlerCount: Sendable {
        let value = Atomic<Int>(0)
    }

    /// A small router exercising each handler style.
    static func testRouter(hangs: HandlerCount? = nil) -> Router {
        var router = Router()
        router.get("/hello") { request, _ in
            .respond(
                .json(
                    ["greeting": "hello", "client": request.headers["x-CLIENT"] ?? "-"],
                    headers: [("X-Served-By", "test")]))
        }
        router.get("/echo") { request, _ in
            .respond(.json(request.query))
        }
        router.get("/items/{id}/detail") { _, parameters in
            .respond(.text(parameters["id"] ?? "?"))
        }
        router.put("/items/{id}/detail") { _, _ in
            .respond(HTTPResponse(status: 204))
        }
        router.post("/upload") { request, _ in
            .respond(
                .json(UploadSummary(count: request.body.count, sum: request.body.reduce(0) { $0 + Int($1) })))
        }
        router.get("/slow") { _, _ in
            .deferred {
                try? await Task.sleep(for: .milliseconds(50))
                return .text("late")
            }
        }
        router.get("/hang") { _, _ in
            hangs?.value.add(1, ordering: .relaxed)
            return .deferred {
                // Ends early only through cancellation, which stop() delivers.
                try? await Task.sleep(for: .seconds(30))
                return .text("too late")
            }
        }
        return router
    }

    static func withServer(
        _ configuration: HTTPServer.Configuration = HTTPServer.Configuration(),
        _ body: (HTTPServer, RawHTTPClient) async throws -> Void
    ) async throws {
        let server = HTTPServer(configuration: configuration, router: testRouter())
        try await server.serving {
            let port = try #require(server.port)
            #expect(port != 0)
            try await body(server, RawHTTPClient(port: port))
        }
    }

    static func decodeProblem(_ response: RawHTTPClient.Response) throws -> [String: ProblemField] {
        try JSONDecoder().decode([String: ProblemField].self, from: Data(response.body))
    }

    /// Enough of JSON to read problem members in tests.
    enum ProblemField: Decodable, Equatable {
        case string(String)
        case number(Int)
        case strings([String])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .string(text)
            } else if let number = try? container.decode(Int.self) {
                self = .number(number)
            } else {
                self = .strings(try container.decode([String].self))
            }
        }
    }

    @Test func jsonBodyAndHeaders() async throws {
        try await Self.withServer { _, client in
            let response = try await offPool {
                try client.request("GET", "/hello", headers: [("X-Client", "t1")])
            }
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            #expect(response.header("X-Served-By") == "test")
            let body = try JSONDecoder().decode([String: String].self, from: Data(response.body))
            #expect(body == ["greeting": "hello", "client": "t1"])
        }
    }

    @Test func headAnswersLikeGetWithoutBody() async throws {
        try await Self.withServer { _, client in
            let response = try await offPool { try client.request("HEAD", "/hello") }
            #expect(response.status == 200)
            #expect(response.body.isEmpty)
        }
    }

    @Test func queryIsDecoded() async throws {
        try await Self.withServer { _, client in
            let target = "/echo?name=a%20b&plus=1+2&empty=&flag&enc%3Dkey=v%26w"
            let response = try await offPool { try client.request("GET", target) }
            #expect(response.status == 200)
            let query = try JSONDecoder().decode([String: String].self, from: Data(response.body))
            #expect(query == ["name": "a b", "plus": "1 2", "empty": "", "flag": "", "enc=key": "v&w"])
            // A name sent twice (here once encoded) has no one value: refused before the handler.
            let twice = try await offPool { try client.request("GET", target + "&n%61me=second") }
            #expect(twice.status == 400 && twice.text.contains("'name'"))
        }
    }

    @Test func encodedSlashStaysInsideItsSegment() async throws {
        try await Self.withServer { _, client in
            let encoded = try await offPool { try client.request("GET", "/items/a%2Fb/detail") }
            #expect(encoded.status == 200)
            #expect(encoded.text == "a%2Fb")
            let split = try await offPool { try client.request("GET", "/items/a/b/detail") }
            #expect(split.status == 404)
        }
    }

    @Test func unknownPathIsNotFoundProblem() async throws {
        try await Self.withServer { _, client in
            let response = try await offPool { try client.request("GET", "/nowhere") }
            #expect(response.status == 404)
            #expect(response.header("Content-Type") == "application/problem+json")
            let problem = try Self.decodeProblem(response)
            #expect(problem["status"] == .number(404))
            #expect(problem["type"] == .string("https://graceapi.dev/problems/not-found"))
            guard case .string(let resolution) = problem["resolution"] else {
                Issue.record("no resolution in \(problem)")
                return
            }
            #expect(!resolution.isEmpty)
        }
    }

    @Test func wrongMethodIsMethodNotAllowedWithAllow() async throws {
        try await Self.withServer { _, client in
            let response = try await offPool { try client.request("DELETE", "/items/x/detail") }
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD, PUT")
            #expect(response.header("Content-Type") == "application/problem+json")
            let problem = try Self.decodeProblem(response)
            #expect(problem["allowed"] == .strings(["GET", "HEAD", "PUT"]))
            #expect(problem["resolution"] != nil)
        }
    }

    @Test func declaredOversizeBodyIsRefusedBeforeItIsSent() async throws {
        try await Self.withServer(HTTPServer.Configuration(maxBodyBytes: 1024)) { _, client in
            // Only the head goes out: the 413 must come without the server waiting for the body.
            let head = Array(
                "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
                    .utf8)
            let response = try await offPool { try client.exchange([head]) }
            #expect(response.status == 413)
            #expect(response.header("Content-Type") == "application/problem+json")
            let problem = try Self.decodeProblem(response)
            #expect(problem["limit"] == .number(1024))
            #expect(problem["resolution"] != nil)
        }
    }

    @Test func chunkedOversizeBodyIsRefused() async throws {
        try await Self.withServer(HTTPServer.Configuration(maxBodyBytes: 1024)) { _, client in
            let chunk = Array("258\r\n".utf8) + [UInt8](repeating: 0x61, count: 0x258) + Array("\r\n".utf8)
            let head = RawHTTPClient.requestBytes(
                "POST", "/upload", headers: [("Transfer-Encoding", "chunked")])
            let pieces = [head, chunk, chunk, Array("0\r\n\r\n".utf8)]
            let response = try await offPool { try client.exchange(pieces, pauseMicroseconds: 10_000) }
            #expect(response.status == 413)
            #expect(response.header("Content-Type") == "application/problem+json")
        }
    }

    @Test func bodyAtTheLimitIsAccepted() async throws {
        try await Self.withServer(HTTPServer.Configuration(maxBodyBytes: 1024)) { _, client in
            let body = [UInt8](repeating: 1, count: 1024)
            let response = try await offPool { try client.request("POST", "/upload", body: body) }
            #expect(response.status == 200)
            let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(response.body))
            #expect(summary == UploadSummary(count: 1024, sum: 1024))
        }
    }

    @Test func bodySentInPiecesArrivesWhole() async throws {
        try await Self.withServer { _, client in
            let body = (0..<30_000).map { UInt8($0 % 251) }
            let full = RawHTTPClient.requestBytes("POST", "/upload", body: body)
            let headLength = full.count - body.count
            // Head, then the body in four pieces with pauses, so MHD sees several upload calls.
            var pieces = [Array(full[..<headLength])]
            for start in stride(from: 0, to: body.count, by: 7_500) {
                pieces.append(Array(body[start..<min(start + 7_500, body.count)]))
            }
            let sent = pieces
            let response = try await offPool { try client.exchange(sent, pauseMicroseconds: 20_000) }
            #expect(response.status == 200)
            let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(response.body))
            #expect(summary == UploadSummary(count: body.count, sum: body.reduce(0) { $0 + Int($1) }))
        }
    }

    @Test func chunkedBodyArrivesWhole() async throws {
        try await Self.withServer { _, client in
            let head = RawHTTPClient.requestBytes(
                "POST", "/upload", headers: [("Transfer-Encoding", "chunked")])
            let pieces = [
                head, Array("3\r\nabc\r\n".utf8), Array("2\r\nde\r\n".utf8), Array("0\r\n\r\n".utf8),
            ]
            let response = try await offPool { try client.exchange(pieces, pauseMicroseconds: 10_000) }
            #expect(response.status == 200)
            let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(response.body))
            #expect(summary == UploadSummary(count: 5, sum: Array("abcde".utf8).reduce(0) { $0 + Int($1) }))
        }
    }

    @Test func deferredHandlerAnswersFromATask() async throws {
        try await Self.withServer { server, client in
            let response = try await offPool { try client.request("GET", "/slow") }
            #expect(response.status == 200)
            #expect(response.text == "late")
            #expect(server.suspendedCount == 0)
        }
    }

    @Test func fiftyConcurrentRequestsAreAllAnswered() async throws {
        // All from 127.0.0.1: lift the per-client limit, which the edge tests cover.
        try await Self.withServer(HTTPServer.Configuration(perClientConnectionLimit: 0)) { _, client in
            let statuses = await withTaskGroup(of: (Int, Int).self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let target = index % 2 == 0 ? "/hello" : "/slow"
                        let status = await offPool { (try? client.request("GET", target))?.status ?? -1 }
                        return (index, status)
                    }
                }
                var statuses: [Int: Int] = [:]
                for await (index, status) in group {
                    statuses[index] = status
                }
                return statuses
            }
            #expect(statuses.count == 50)
            #expect(statuses.values.allSatisfy { $0 == 200 }, "statuses: \(statuses)")
        }
    }

    @Test func malformedInputAndEarlyDisconnectsLeaveTheServerHealthy() async throws {
        try await Self.withServer(HTTPServer.Configuration(connectionTimeoutSeconds: 2)) { server, client in
            let hugeHeader = RawHTTPClient.requestBytes(
                "GET", "/hello", headers: [("X-Big", String(repeating: "b", count: 100_000))])
            let hugeTarget = RawHTTPClient.requestBytes("GET", "/" + String(repeating: "t", count: 100_000))
            let inputs: [[UInt8]] = [
                Array("GARBAGE\r\n\r\n".utf8),
                Array("\r\n\r\n".utf8),
                [0, 1, 2, 255, 254, 13, 10, 13, 10],
                RawHTTPClient.requestBytes("FROB", "/hello"),
                RawHTTPClient.requestBytes("GET", "*"),
                RawHTTPClient.requestBytes("GET", "http://elsewhere/hello"),
                Array("GET /hello HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n".utf8),
                Array("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n".utf8),
                Array("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: zz\r\n\r\n".utf8),
                hugeHeader,
                hugeTarget,
            ]
            // Any answer, or none, is fine; the server must simply survive. Some get no answer until
            // the server's header timeout, which this client need not wait out.
            var impatient = client
            impatient.receiveTimeoutSeconds = 2
            for input in inputs {
                _ = try? await offPool { [impatient] in try impatient.exchangeRaw([input]) }
            }
            let frob = try await offPool { try client.request("FROB", "/hello") }
            #expect(frob.status == 405)

            // Clients that vanish mid-body, mid-head, or while their request is suspended.
            try await offPool {
                try client.sendAndHangUp(
                    Array("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc".utf8))
                try client.sendAndHangUp(Array("GET /hello HTTP/1.1\r\nHost:".utf8))
                try client.sendAndHangUp(RawHTTPClient.requestBytes("GET", "/slow"))
            }
            try await Task.sleep(for: .milliseconds(200))

            let healthy = try await offPool { try client.request("GET", "/hello") }
            #expect(healthy.status == 200)

            // Every per-request context is released (the half-sent head waits for the timeout).
            let deadline = ContinuousClock.now + .seconds(5)
            while server.liveRequestCount > 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.liveRequestCount == 0)
        }
    }

    @Test func stopWithASuspendedRequestAnswersItAndReturns() async throws {
        let server = HTTPServer(router: Self.testRouter())
        try await server.startOffPool()
        let client = RawHTTPClient(port: try #require(server.port))
        let pending = Task { try await offPool { try client.request("GET", "/hang") } }

        try await waitUntil { server.suspendedCount == 1 }
        #expect(server.suspendedCount == 1)

        let stopped = await offPool { () -> Duration in
            let started = ContinuousClock.now
            server.stop()
            return ContinuousClock.now - started
        }
        // The handler's task would run for 30 s; stop() answers the request instead of waiting.
        #expect(stopped < .seconds(3))
        #expect(!server.isRunning)

        let response = try await pending.value
        #expect(response.status == 503)
        #expect(response.header("Content-Type") == "application/problem+json")

        await server.stopOffPool()
        // The same server starts again after a stop.
        try await server.serving {
            let again = RawHTTPClient(port: try #require(server.port))
            let hello = try await offPool { try again.request("GET", "/hello") }
            #expect(hello.status == 200)
        }
    }

    @Test func stopDuringManyDeferredRequestsNeitherHangsNorCrashes() async throws {
        let hangs = HandlerCount()
        let server = HTTPServer(router: Self.testRouter(hangs: hangs))
        try await server.startOffPool()
        let client = RawHTTPClient(port: try #require(server.port))
        let clients = (0..<20).map { index in
            Task {
                await offPool {
                    (try? client.request("GET", index % 4 == 0 ? "/slow" : "/hang"))?.status ?? -1
                }
            }
        }
        // Stop once the fifteen /hang requests have reached their handler; the /slow ones may be
        // anywhere by then.
        try await waitUntil { hangs.value.load(ordering: .relaxed) == 15 }
        await server.stopOffPool()
        var statuses: [Int] = []
        for task in clients {
            statuses.append(await task.value)
        }
        // Each client got its answer, the 503 from stop(), or at worst a closed connection.
        #expect(statuses.allSatisfy { [200, 503, -1].contains($0) }, "\(statuses)")
        #expect(statuses.filter { $0 == 503 }.count >= 15, "\(statuses)")
    }

    /// Reads one response whose body has a Content-Length, leaving the connection open.
    static func receiveOne(_ fd: Int32) throws -> RawHTTPClient.Response {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let response = try? RawHTTPClient.parse(received),
                let length = response.header("Content-Length").flatMap({ Int($0) }),
                response.body.count >= length
            {
                return response
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                throw RawHTTPClient.Failure(description: "connection ended after \(received.count) bytes")
            }
            received += buffer[..<count]
        }
    }

    /// Connections that sent part of a head and then nothing more.
    static func openSlowClients(_ client: RawHTTPClient, count: Int) throws -> [Int32] {
        var sockets: [Int32] = []
        for _ in 0..<count {
            let fd = try client.connectSocket()
            sockets.append(fd)
            try client.sendAll(fd, Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8))
        }
        return sockets
    }

    @Test func keepAliveSurvivesTheHandoverToMHD() async throws {
        try await Self.withServer { _, client in
            let statuses = try await offPool { () throws -> [Int] in
                let fd = try client.connectSocket()
                defer { close(fd) }
                try client.sendAll(fd, Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                let first = try Self.receiveOne(fd)
                try client.sendAll(fd, Array("GET /items/7/detail HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                let second = try Self.receiveOne(fd)
                try client.sendAll(fd, RawHTTPClient.requestBytes("GET", "/echo?n=3"))
                let third = try RawHTTPClient.parse(try client.receiveAll(fd))
                return [first.status, second.status, second.text == "7" ? 200 : 0, third.status]
            }
            #expect(statuses == [200, 200, 200, 200])
        }
    }

    @Test func slowClientsInTheGateDoNotDelayAFreshOne() async throws {
        // All from 127.0.0.1: lift the per-client limit, which gateKeepsThePerClientAndConnectionLimits covers.
        try await Self.withServer(HTTPServer.Configuration(perClientConnectionLimit: 0)) { _, client in
            let (status, elapsed) = try await offPool { () throws -> (Int, Duration) in
                let slow = try Self.openSlowClients(client, count: 150)
                defer { slow.forEach { close($0) } }
                let start = ContinuousClock.now
                let status = try client.request("GET", "/hello").status
                return (status, ContinuousClock.now - start)
            }
            #expect(status == 200)
            #expect(elapsed < .seconds(1), "\(elapsed)")
        }
    }

    @Test func gateKeepsThePerClientAndConnectionLimits() async throws {
        let configuration = HTTPServer.Configuration(connectionLimit: 4, perClientConnectionLimit: 2)
        try await Self.withServer(configuration) { _, client in
            let waits = try await offPool { () throws -> [Bool] in
                let slow = try Self.openSlowClients(client, count: 3)
                defer { slow.forEach { close($0) } }
                // The third is past the per-client limit of unfinished heads: the oldest makes room;
                // so does the second for a fresh request from the same client. Whether a socket is
                // still held is read once that request is answered (the gate takes clients in order).
                _ = try client.request("GET", "/hello")
                return slow.map { fd in
                    var byte: UInt8 = 0
                    return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) < 0 && errno == EAGAIN
                }
            }
            #expect(waits == [false, false, true])
        }
        // Only connections MHD holds (their head in) can fill the listener: then a newcomer gets 503.
        let crowded = HTTPServer.Configuration(connectionLimit: 3, perClientConnectionLimit: 0)
        try await Self.withServer(crowded) { _, client in
            let (refused, served) = try await offPool { () throws -> (RawHTTPClient.Response, Int) in
                let kept = try (0..<3).map { _ in
                    let fd = try client.connectSocket()
                    try client.sendAll(fd, Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                    _ = try Self.receiveOne(fd)
                    return fd
                }
                let refused = try client.request("GET", "/hello")
                kept.forEach { close($0) }
                // MHD lets go of a connection when it sees the hang-up; on a loaded machine that
                // can take more than a moment, so ask again for up to 3 s.
                var status = 0
                for _ in 0..<60 {
                    status = (try? client.request("GET", "/hello").status) ?? 0
                    if status == 200 { break }
                    usleep(50_000)
                }
                return (refused, status)
            }
            #expect(refused.status == 503)
            #expect(refused.header("Retry-After") == "1")
            #expect(
                try Self.decodeProblem(refused)["type"]
                    == .string("https://graceapi.dev/problems/too-many-connections"))
            #expect(served == 200)
        }
        // Unfinished heads alone never fill it: the oldest makes room for a newcomer.
        try await Self.withServer(crowded) { _, client in
            let status = try await offPool { () throws -> Int in
                let slow = try Self.openSlowClients(client, count: 3)
                defer { slow.forEach { close($0) } }
                return try client.request("GET", "/hello").status
            }
            #expect(status == 200)
        }
    }

    @Test func stopClosesClientsInTheGateAndFreesThePort() async throws {
        let server = HTTPServer(router: Self.testRouter())
        try await server.startOffPool()
        let port = try #require(server.port)
        let client = RawHTTPClient(port: port)
        let slow = try await offPool { try Self.openSlowClients(client, count: 50) }
        try await Task.sleep(for: .milliseconds(100))
        let stopped = await offPool { () -> Duration in
            let started = ContinuousClock.now
            server.stop()
            return ContinuousClock.now - started
        }
        #expect(stopped < .seconds(2))
        #expect(!server.isRunning)
        // Every held client is closed (EOF, or a reset for one still in the backlog), not left waiting.
        let ends = await offPool {
            slow.map { fd -> Int in
                defer { close(fd) }
                var byte: UInt8 = 0
                let count = recv(fd, &byte, 1, 0)
                return count == 0 || (count < 0 && errno == ECONNRESET) ? 0 : -1
            }
        }
        #expect(ends.allSatisfy { $0 == 0 })
        let successor = HTTPServer(configuration: .loopback(port: port), router: Self.testRouter())
        try await successor.serving {
            let hello = try await offPool { try RawHTTPClient(port: port).request("GET", "/hello") }
            #expect(hello.status == 200)
        }
    }

    @Test func mhdMessagesReachTheLogClosure() async throws {
        let lines = Mutex<[String]>([])
        let server = HTTPServer(
            router: Self.testRouter(), log: { line in lines.withLock { $0.append(line) } })
        try await server.serving {
            let client = RawHTTPClient(port: try #require(server.port))
            // The gate answers a malformed first request itself; on a kept-alive connection the second
            // request goes straight to MHD, which refuses a head longer than its memory for a connection.
            let first = Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
            let huge = RawHTTPClient.requestBytes(
                "GET", "/hello", headers: [("X-Big", String(repeating: "b", count: HeadGate.headLimit))])
            _ = try? await offPool { try client.exchangeRaw([first, huge], pauseMicroseconds: 100_000) }
        }
        let logged = lines.withLock { $0 }
        #expect(logged.contains { $0.contains("431") }, "\(logged)")
        #expect(!logged.contains { $0.contains("not the first option") }, "\(logged)")
    }

    @Test func invalidConfigurationIsRejected() throws {
        let open = HTTPServer(
            configuration: HTTPServer.Configuration(
                listeners: [.init(address: .tcp(host: "0.0.0.0", port: 0), noAuth: true)]),
            router: Router())
        #expect(
            throws: HTTPServerError.invalidConfiguration(
                "noAuth on 0.0.0.0:0, which is not a loopback address")
        ) {
            try open.start()
        }
        #expect(!open.isRunning)
        let badPool = HTTPServer(configuration: HTTPServer.Configuration(threadPoolSize: 0), router: Router())
        #expect(throws: HTTPServerError.invalidConfiguration("threadPoolSize")) { try badPool.start() }
    }

    @Test func startTwiceAndPortInUseFail() async throws {
        let first = HTTPServer(router: Router())
        try await first.serving {
            #expect(throws: HTTPServerError.alreadyRunning) { try first.start() }
            let port = try #require(first.port)
            let second = HTTPServer(configuration: .loopback(port: port), router: Router())
            #expect(throws: HTTPServerError.listenFailed("127.0.0.1:\(port)", errno: EADDRINUSE)) {
                try second.start()
            }
        }
    }
}
