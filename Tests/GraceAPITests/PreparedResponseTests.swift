import FoundationEssentials
import GraceTestSupport
import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Bodies prepared once in libmicrohttpd and queued by reference on every connection: each client
/// gets them whole, and one still reading when the body is replaced gets the old one intact.
@Suite struct PreparedResponseTests {
    /// Larger than the kernel's largest send buffer (4 MiB), so a client that stops reading leaves
    /// MHD in the middle of sending it.
    static let largeSize = 6 << 20

    /// Bytes that differ from one `seed` to the next and at every offset, so a body sent from the
    /// wrong response, or from the right one at the wrong offset, cannot pass for the right one.
    static func body(_ size: Int, seed: UInt8) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) ^ seed }
    }

    static func prepared(_ body: [UInt8], etag: String) throws -> PreparedResponse {
        try #require(
            PreparedResponse(
                status: 200, headers: [("Content-Type", "application/json"), ("ETag", etag)], body: body))
    }

    /// The body is lent to libmicrohttpd, not copied: a response nobody sends any more gives it back.
    /// 256 responses of a fresh 1 MiB body each would hold 256 MiB if they kept their bodies.
    @Test func aReleasedResponseGivesItsBodyBack() throws {
        func residentBytes() -> Int {
            let fd = open("/proc/self/statm", O_RDONLY)
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 128)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            let fields = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self).split(separator: " ")
            return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        let before = residentBytes()
        for round in 0..<256 {
            let body = [UInt8](repeating: UInt8(truncatingIfNeeded: round), count: 1 << 20)
            _ = try Self.prepared(body, etag: "\"\(round)\"")
        }
        let grown = residentBytes() - before
        #expect(grown < 64 << 20, "resident memory grew by \(grown >> 20) MiB")
    }

    /// The body a test server answers with, replaceable as a snapshot is.
    final class Current: Sendable {
        private let value: Mutex<(bytes: [UInt8], prepared: PreparedResponse)>
        init(_ bytes: [UInt8], _ prepared: PreparedResponse) { value = Mutex((bytes, prepared)) }
        var now: (bytes: [UInt8], prepared: PreparedResponse) { value.withLock { $0 } }
        func replace(_ bytes: [UInt8], _ prepared: PreparedResponse) {
            value.withLock { $0 = (bytes, prepared) }
        }
    }

    /// Nil when `got` is `expected`, else where they first differ. (A failed `#expect(a == b)` on
    /// megabytes has the testing library diff them, which runs for hours: a failure became a hang.)
    static func mismatch(_ got: [UInt8], _ expected: [UInt8]) -> String? {
        guard got != expected else { return nil }
        let first =
            zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(got.count, expected.count)
        return "\(got.count) bytes where \(expected.count) were due, first difference at offset \(first)"
    }

    /// A server whose `/body` answers with whatever `current` holds, as a snapshot's route does.
    /// `connectionTimeoutSeconds` is MHD's idle timeout (0: none).
    static func withServer(
        current: Current,
        listener: HTTPServer.Listener = HTTPServer.Listener(
            address: .tcp(host: "127.0.0.1", port: 0), noAuth: true),
        connectionTimeoutSeconds: Int = 30,
        _ body: (HTTPServer) async throws -> Void
    ) async throws {
        var router = Router()
        router.get("/body") { _, _ in
            let (bytes, prepared) = current.now
            var response = HTTPResponse.json(bytes: bytes)
            response.prepared = prepared
            return .respond(response)
        }
        let server = HTTPServer(
            configuration: HTTPServer.Configuration(
                listeners: [listener], connectionTimeoutSeconds: connectionTimeoutSeconds),
            router: router)
        try await server.serving { try await body(server) }
    }

    @Test("GET sends the prepared bytes exactly; HEAD sends their headers and no body")
    func getAndHead() async throws {
        let bytes = Self.body(300_000, seed: 7)
        let current = Current(bytes, try Self.prepared(bytes, etag: "\"one\""))
        try await Self.withServer(current: current) { server in
            let client = RawHTTPClient(port: try #require(server.port))
            let got = try await offPool { try client.request("GET", "/body") }
            #expect(got.status == 200)
            #expect(Self.mismatch(got.body, bytes) == nil)
            #expect(got.header("ETag") == "\"one\"")
            #expect(got.header("Content-Length") == "\(bytes.count)")
            let head = try await offPool { try client.request("HEAD", "/body") }
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Content-Length") == "\(bytes.count)")
            #expect(head.header("ETag") == "\"one\"")
        }
    }

    @Test("pipelined requests on one kept-alive connection each get the whole prepared body")
    func keepAlive() async throws {
        let bytes = Self.body(20_000, seed: 3)
        let current = Current(bytes, try Self.prepared(bytes, etag: "\"k\""))
        try await Self.withServer(current: current) { server in
            let client = RawHTTPClient(port: try #require(server.port))
            let raw = try await offPool { () throws -> [UInt8] in
                let fd = try client.connectSocket()
                defer { close(fd) }
                // Pipelined: three heads at once, the last asking to close.
                let keep = "GET /body HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                let last = "GET /body HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                try client.sendAll(fd, Array((keep + keep + last).utf8))
                return try client.receiveAll(fd)
            }
            let answers = Self.split(raw)
            #expect(answers.count == 3)
            for answer in answers {
                #expect(answer.status == 200)
                #expect(Self.mismatch(answer.body, bytes) == nil)
            }
        }
    }

    @Test("a body replaced while a slow client still reads it reaches that client intact")
    func replacedWhileSending() async throws {
        let old = Self.body(Self.largeSize, seed: 0x11)
        let new = Self.body(Self.largeSize, seed: 0x22)
        let current = Current(old, try Self.prepared(old, etag: "\"old\""))
        // No idle timeout: the slow client reads nothing while the test does the rest, which on a
        // busy machine can take longer than MHD's 30 s (it then closed the connection mid-body).
        try await Self.withServer(current: current, connectionTimeoutSeconds: 0) { server in
            let client = RawHTTPClient(port: try #require(server.port))
            let slow = try await offPool { () throws -> Int32 in
                let fd = try client.connectSocket()
                try client.sendAll(fd, RawHTTPClient.requestBytes("GET", "/body"))
                return fd
            }
            defer { close(slow) }
            // The slow client has its first bytes: MHD is sending the old body, and the kernel's
            // buffers cannot hold the rest, so MHD still holds it.
            let first = try await offPool { () throws -> [UInt8] in
                var buffer = [UInt8](repeating: 0, count: 1024)
                let count = buffer.withUnsafeMutableBytes { recv(slow, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { throw RawHTTPClient.Failure(description: "recv: errno \(errno)") }
                return Array(buffer[..<count])
            }
            // Replace it: the server drops its reference to the old body.
            current.replace(new, try Self.prepared(new, etag: "\"new\""))
            let fresh = try await offPool { try client.request("GET", "/body") }
            #expect(fresh.status == 200)
            #expect(fresh.header("ETag") == "\"new\"")
            #expect(Self.mismatch(fresh.body, new) == nil)
            let rest = try await offPool { try client.receiveAll(slow) }
            let answer = try RawHTTPClient.parse(first + rest)
            #expect(answer.header("ETag") == "\"old\"")
            #expect(Self.mismatch(answer.body, old) == nil)
        }
    }

    @Test("a client that never reads a prepared body does not stop others from getting it")
    func neverReads() async throws {
        let bytes = Self.body(Self.largeSize, seed: 0x33)
        let current = Current(bytes, try Self.prepared(bytes, etag: "\"n\""))
        try await Self.withServer(current: current) { server in
            let client = RawHTTPClient(port: try #require(server.port))
            let stuck = try await offPool { () throws -> Int32 in
                let fd = try client.connectSocket()
                try client.sendAll(fd, RawHTTPClient.requestBytes("GET", "/body"))
                return fd
            }
            defer { close(stuck) }
            for _ in 0..<3 {
                let got = try await offPool { try client.request("GET", "/body") }
                #expect(got.status == 200)
                #expect(Self.mismatch(got.body, bytes) == nil)
            }
        }
    }

    @Test(
        "over TLS a prepared body arrives byte for byte",
        .enabled(if: access("/usr/bin/openssl", X_OK) == 0 && access("/usr/bin/curl", X_OK) == 0))
    func overTLS() async throws {
        let pki = try TestPKI()
        let bytes = Self.body(300_000, seed: 0x55)
        let current = Current(bytes, try Self.prepared(bytes, etag: "\"t\""))
        let listener = HTTPServer.Listener(
            address: .tcp(host: "127.0.0.1", port: 0),
            tls: HTTPServer.TLSMaterial(certificatePEM: pki.serverCertificate, keyPEM: pki.serverKey),
            noAuth: true)
        try await Self.withServer(current: current, listener: listener) { server in
            let port = try #require(server.port)
            let folder = pki.folder
            // Twice: the second TLS connection queues the same response again.
            for name in ["first", "second"] {
                let command = [
                    "/usr/bin/curl", "-s", "--cacert", pki.path("server.pem"), "-o", pki.path(name),
                    "-w", "%{http_code}", "https://127.0.0.1:\(port)/body",
                ]
                let result = try await offPool { try ChildProcess.run(command, in: folder) }
                #expect(result.output == "200")
                let got = try #require(FileManager.default.contents(atPath: pki.path(name)))
                #expect(Self.mismatch(Array(got), bytes) == nil)
            }
        }
    }

    /// Responses one after another on one connection, by their Content-Length.
    static func split(_ raw: [UInt8]) -> [RawHTTPClient.Response] {
        var answers: [RawHTTPClient.Response] = []
        var rest = raw[...]
        let separator: [UInt8] = [13, 10, 13, 10]
        while !rest.isEmpty {
            guard let end = rest.indices.first(where: { rest[$0...].starts(with: separator) }),
                let head = try? RawHTTPClient.parse(Array(rest[..<(end + 4)])),
                let length = head.header("Content-Length").flatMap({ Int($0) }),
                rest.count >= end + 4 - rest.startIndex + length
            else { break }
            let bodyStart = end + 4
            answers.append(try! RawHTTPClient.parse(Array(rest[rest.startIndex..<(bodyStart + length)])))
            rest = rest[(bodyStart + length)...]
        }
        return answers
    }
}
