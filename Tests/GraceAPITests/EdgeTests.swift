import FoundationEssentials
import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Hostile input at the edge: every refusal is one problem+json answer and nothing is done.
@Suite("Edge", .serialized)
struct EdgeTests {
    static let gpu = "0000:c3:00.0"

    /// The jobs the service has, to prove a refused request started none.
    func jobCount(_ guarded: GuardedService) async throws -> Int {
        let response = try await guarded.request("GET", "/jobs", headers: guarded.bearer(.viewer))
        struct Page: Decodable { var items: [JobView] }
        return try response.decode(Page.self).items.count
    }

    /// Raw bytes over TCP, the answer as sent.
    func raw(_ guarded: GuardedService, _ text: String) async throws -> [UInt8] {
        let client = guarded.tcp
        return try await offPool { try client.exchangeRaw([Array(text.utf8)]) }
    }

    @Test("a JSON key given twice is 400 and starts nothing, whichever value would have won")
    func duplicateKey() async throws {
        let guarded = try await GuardedService.start()
        for body in [#"{"dryRun": false, "dryRun": true}"#, #"{"dryRun": true, "d\u0072yRun": false}"#] {
            let response = try await guarded.request(
                "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator), body: body)
            #expect(response.status == 400, "\(body)")
            #expect(try response.problem().detail.contains("dryRun"))
        }
        #expect(try await jobCount(guarded) == 0)
    }

    @Test("a query parameter sent twice is 400 on every path, starts nothing, and names the parameter")
    func repeatedQueryParameter() async throws {
        let guarded = try await GuardedService.start()
        for (method, target) in [
            ("GET", "/jobs?limit=1&limit=500"), ("GET", "/events?maxSeconds=1&maxSeconds=2"),
            ("GET", "/gpus?x=1&x=2"), ("POST", "/gpus/\(Self.gpu)/reset?dryRun&dry%52un=1"),
        ] {
            let response = try await guarded.request(
                method, target, headers: guarded.bearer(.operator), body: method == "POST" ? "{}" : nil)
            #expect(response.status == 400, "\(target)")
            let problem = try response.problem()
            #expect(problem.type.hasSuffix("/invalid-query"), "\(target)")
        }
        #expect(try await jobCount(guarded) == 0)
        // Different names, and a name once, are as before.
        let fine = try await guarded.request(
            "GET", "/jobs?limit=1&state=failed", headers: guarded.bearer(.viewer))
        #expect(fine.status == 200)
    }

    @Test("a cross-origin text/plain POST (what a web page can send) is refused and starts nothing")
    func crossOrigin() async throws {
        let guarded = try await GuardedService.start(allowedOrigins: ["https://dash.example"])
        let page = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset",
            headers: guarded.bearer(.admin) + [
                ("Origin", "http://evil.example"), ("Content-Type", "text/plain"),
            ],
            body: "{}")
        #expect(page.status == 403)
        #expect(try page.problem().type.hasSuffix("/origin-not-allowed"))
        let plain = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset",
            headers: guarded.bearer(.admin) + [("Content-Type", "text/plain")],
            body: "{}")
        #expect(plain.status == 415)
        #expect(plain.header("Accept-Post") == "application/json")
        let missing = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.admin) + [("Content-Type", "")],
            body: "{}")
        #expect(missing.status == 415)
        #expect(try await jobCount(guarded) == 0)
        // The configured origin may; a JSON type with charset=utf-8 is JSON; no body needs no type.
        let allowed = try await guarded.request(
            "GET", "/gpus", headers: guarded.bearer(.viewer) + [("Origin", "https://dash.example")])
        #expect(allowed.status == 200)
        let charset = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset",
            headers: guarded.bearer(.admin) + [("Content-Type", "application/json; charset=utf-8")],
            body: #"{"dryRun": true}"#)
        #expect(charset.status == 200)
    }

    @Test(
        "a Host that does not name the server is 421 (DNS rebinding); its address, localhost and configured names pass"
    )
    func hostCheck() async throws {
        let guarded = try await GuardedService.start(allowedHosts: ["gpu-host.example"])
        let port = guarded.service.application.port!
        let token = guarded.tokens[.viewer]!
        func status(_ hosts: [String]) async throws -> Int {
            let head =
                "GET /gpus HTTP/1.1\r\n" + hosts.map { "Host: \($0)\r\n" }.joined()
                + "Authorization: Bearer \(token)\r\nConnection: close\r\n\r\n"
            return try RawHTTPClient.parse(try await raw(guarded, head)).status
        }
        #expect(try await status(["evil.example:\(port)"]) == 421)
        #expect(try await status(["127.0.0.1:\(port &+ 1)"]) == 421)
        #expect(try await status(["127.0.0.1:\(port)", "evil.example"]) == 421)
        #expect(try await status([]) == 421)
        #expect(try await status(["127.0.0.1:\(port)"]) == 200)
        #expect(try await status(["localhost:\(port)"]) == 200)
        #expect(try await status(["GPU-HOST.example:\(port)"]) == 200)
        let misdirected = try RawHTTPClient.parse(
            try await raw(guarded, "GET /gpus HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"))
        #expect(try misdirected.problem().resolution.contains("--allow-host"))
    }

    @Test(
        "each ambiguous body length gets exactly one 400 problem",
        arguments: [
            "Content-Length: abc", "Content-Length: -1", "Content-Length: 1e3", "Content-Length: 0x10",
            "Content-Length: +5", "Content-Length: 5, 5", "Content-Length: 2\r\nContent-Length: 2",
            "Content-Length: 2\r\nTransfer-Encoding: chunked", "Transfer-Encoding: gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Content-Length: ",
        ])
    func ambiguousLength(_ framing: String) async throws {
        let guarded = try await GuardedService.start()
        let head =
            "POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(guarded.tokens[.operator]!)\r\n"
            + "Content-Type: application/json\r\n\(framing)\r\n\r\n{}"
        let answer = String(decoding: try await raw(guarded, head), as: UTF8.self)
        #expect(statusLines(answer) == 1, "one status line: \(answer)")
        let response = try RawHTTPClient.parse(Array(answer.utf8))
        #expect(response.status == 400, "\(answer)")
        #expect(try response.problem().resolution.contains("Content-Length"))
        #expect(try await jobCount(guarded) == 0)
    }

    @Test(
        "a first request libmicrohttpd would answer with HTML gets one problem instead",
        arguments: [
            ("GET /gpus\r\nHost: 127.0.0.1\r\n\r\n", 400),
            ("GET  /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
            ("GET /gpus HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505),
            ("GET /gpus http/1.1\r\nHost: 127.0.0.1\r\n\r\n", 505),
            ("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n", 400),
            (
                "GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + String(repeating: "b", count: 40_000)
                    + "\r\n\r\n", 431
            ),
        ])
    func malformedHeads(_ head: String, _ status: Int) async throws {
        let guarded = try await GuardedService.start()
        let answer = String(decoding: try await raw(guarded, head), as: UTF8.self)
        #expect(statusLines(answer) == 1, "one status line: \(answer.prefix(300))")
        let response = try RawHTTPClient.parse(Array(answer.utf8))
        #expect(response.status == status)
        _ = try response.problem()
    }

    @Test("a change answered before libmicrohttpd sees it is still in the audit trail, under its token")
    func gateRefusalsAreAudited() async throws {
        let guarded = try await GuardedService.start()
        let head =
            "POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(guarded.tokens[.operator]!)\r\n"
            + "Content-Type: application/json\r\nContent-Length: 1e3\r\n\r\n{}"
        #expect(try RawHTTPClient.parse(try await raw(guarded, head)).status == 400)
        let anonymous = "DELETE /jobs/x HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n"
        #expect(try RawHTTPClient.parse(try await raw(guarded, anonymous)).status == 505)
        let trail = try await guarded.request("GET", "/audit?limit=2", headers: guarded.bearer(.admin))
        let lines = try trail.decode(AuditPage.self).items
        #expect(lines.count == 2)
        #expect(lines.last?.actor == "token:test-operator" && lines.last?.status == 400)
        #expect(lines.last?.action == "POST /gpus/{bdf}/reset" && lines.last?.channel == "tcp")
        #expect(lines.first?.actor == "anonymous@127.0.0.1" && lines.first?.status == 505)
        #expect(lines.first?.action == "DELETE /jobs/{id}")
    }

    @Test("a Content-Length past 64 bits is one 413 problem")
    func overflowingLength() async throws {
        let guarded = try await GuardedService.start()
        let head =
            "POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(guarded.tokens[.operator]!)\r\n"
            + "Content-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n"
        let answer = String(decoding: try await raw(guarded, head), as: UTF8.self)
        #expect(statusLines(answer) == 1, "\(answer)")
        let response = try RawHTTPClient.parse(Array(answer.utf8))
        #expect(response.status == 413)
        #expect(try response.problem().resolution.contains("Content-Length"))
    }

    @Test("a malformed Content-Length over the Unix socket is one 400 problem, and the socket still serves")
    func ambiguousLengthOverSocket() async throws {
        let guarded = try await GuardedService.start()
        let head =
            "POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: abc\r\n\r\n{}"
        let client = guarded.unix
        let bytes = try await offPool { try client.exchangeRaw([Array(head.utf8)]) }
        let answer = String(decoding: bytes, as: UTF8.self)
        #expect(statusLines(answer) == 1, "one status line: \(answer)")
        let response = try RawHTTPClient.parse(bytes)
        #expect(response.status == 400, "\(answer)")
        #expect(try response.problem().resolution.contains("Content-Length"))
        #expect(try await jobCount(guarded) == 0)
        // Handed-over connections keep their peer credentials: root is an admin on the socket.
        let audit = try await guarded.request("GET", "/audit", overSocket: true)
        #expect(audit.status == (geteuid() == 0 ? 200 : 401))
    }

    @Test(
        "a malformed Content-Length is found however MHD would read the head",
        arguments: [
            "POST / HTTP/1.1\nHost: 127.0.0.1\nContent-Length: abc\n\n",
            "\r\nPOST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n x\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length:\t7 \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: one\r\nContent-Length: 2\r\n\r\n",
        ])
    func ambiguousLengthAsMHDReadsIt(_ head: String) async throws {
        let guarded = try await GuardedService.start()
        let answer = String(decoding: try await raw(guarded, head), as: UTF8.self)
        #expect(statusLines(answer) == 1, "one status line: \(answer)")
        #expect(try RawHTTPClient.parse(Array(answer.utf8)).status == 400, "\(answer)")
    }

    @Test("a chunked body over the limit gets 413, not a closed connection")
    func chunkedOverLimit() async throws {
        let guarded = try await GuardedService.start(maxBodyBytes: 1024)
        let head = Array(
            ("POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(guarded.tokens[.operator]!)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .utf8)
        let chunk = Array("1000\r\n".utf8) + [UInt8](repeating: 0x20, count: 4096) + Array("\r\n".utf8)
        let client = guarded.tcp
        let response = try await offPool {
            try client.exchange([head] + Array(repeating: chunk, count: 16) + [Array("0\r\n\r\n".utf8)])
        }
        #expect(response.status == 413)
        #expect(try response.problem().type.hasSuffix("/content-too-large"))
        #expect(try await jobCount(guarded) == 0)
    }

    @Test("a client that trickles its headers in is cut off at the header timeout")
    func slowHeaders() async throws {
        let guarded = try await GuardedService.start(headerTimeoutSeconds: 1)
        let client = guarded.tcp
        let (closedAfter, answered) = try await offPool { () throws -> (Double, Bool) in
            let fd = try client.connectSocket()
            defer { close(fd) }
            let clock = ContinuousClock()
            let start = clock.now
            let head = Array("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)
            try client.sendAll(fd, head)
            // One byte every 200 ms: never silent long enough for an idle timeout.
            for _ in 0..<40 {
                usleep(200_000)
                let sent = [UInt8(ascii: "a")].withUnsafeBytes {
                    send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL))
                }
                if sent <= 0 { break }
            }
            let rest = (try? client.receiveAll(fd)) ?? []
            let elapsed = start.duration(to: clock.now)
            return (
                Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                !rest.isEmpty
            )
        }
        #expect(closedAfter < 4, "closed after \(closedAfter) s")
        #expect(!answered)
        // The server still answers others.
        #expect(try await guarded.request("GET", "/gpus", headers: guarded.bearer(.viewer)).status == 200)
    }

    @Test("changes past the per-identity rate get 429 with Retry-After; reads are not counted")
    func rateLimit() async throws {
        let guarded = try await GuardedService.start(mutationsPerMinute: 3)
        for _ in 0..<3 {
            let dryRun = try await guarded.request(
                "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator),
                body: #"{"dryRun": true}"#)
            #expect(dryRun.status == 200)
        }
        let limited = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator), body: #"{"dryRun": true}"#)
        #expect(limited.status == 429)
        #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
        #expect(try limited.problem().type.hasSuffix("/too-many-mutations"))
        // Another identity has its own budget; reads are free.
        let admin = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.admin), body: #"{"dryRun": true}"#)
        #expect(admin.status == 200)
        for _ in 0..<5 {
            #expect(
                try await guarded.request("GET", "/gpus", headers: guarded.bearer(.operator)).status == 200)
        }
    }

    @Test("two Idempotency-Key headers are 400 and start nothing")
    func doubledIdempotencyKey() async throws {
        let guarded = try await GuardedService.start()
        let response = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset",
            headers: guarded.bearer(.operator) + [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
            body: "{}")
        #expect(response.status == 400)
        #expect(try response.problem().detail.contains("at most one Idempotency-Key"))
        #expect(try await jobCount(guarded) == 0)
    }

    @Test(
        "numbers out of range are 422; a body that is not an object is 400; an empty body means the defaults")
    func bodyValues() async throws {
        let guarded = try await GuardedService.start()
        for deadline in ["0.05", "3601", "-1"] {
            let response = try await guarded.request(
                "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator),
                body: #"{"dryRun": true, "deadlineSeconds": \#(deadline)}"#)
            #expect(response.status == 422, "\(deadline)")
            #expect(try response.problem().detail.contains("deadlineSeconds"))
        }
        for body in ["[]", "\"x\"", "{", "{} {}", #"{"bogus": 1}"#] {
            let response = try await guarded.request(
                "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator), body: body)
            #expect(response.status == 400, "\(body)")
        }
        #expect(try await jobCount(guarded) == 0)
        let defaults = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator))
        #expect(defaults.status == 202)
    }

    @Test("credentials are checked before the body is read")
    func unauthenticatedBodyIsNotRead() async throws {
        let guarded = try await GuardedService.start()
        let head =
            "POST /gpus/\(Self.gpu)/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
        let response = try RawHTTPClient.parse(try await raw(guarded, head))
        #expect(response.status == 401)
    }
}

/// Lines of an answer that look like a status line (`HTTP/1.1 400 ...`): one per response sent.
func statusLines(_ answer: String) -> Int {
    answer.components("\r\n").filter { line in
        line.hasPrefix("HTTP/1.1 ") && line.dropFirst(9).prefix(3).allSatisfy(\.isNumber)
    }.count
}

extension String {
    /// The pieces between occurrences of `separator` (FoundationEssentials has no `components`).
    func components(_ separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}
