import GraceTestSupport
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Who a request is recorded and limited as (issue 19): the identity a caller cannot choose, whatever
/// the fate of its credentials.
@Suite struct CallerIdentityTests {
    static let gpu = "0009:01:00.0"

    @Test(
        "over the socket the rate limit keys on the uid: new processes do not get new buckets",
        .enabled(if: GuardedService.canSwitchUsers))
    func rateLimitKeysOnUid() async throws {
        let guarded = try await GuardedService.start(mutationsPerMinute: 2)
        var statuses: [Int] = []
        for _ in 0..<4 {
            let answer = try await guarded.runAs(
                uid: 65534, gid: GuardedService.socketGroup,
                GuardedService.curlOverSocket(
                    guarded.socketPath, "POST", "/gpus/\(Self.gpu)/reset", body: #"{"dryRun": true}"#))
            statuses.append(answer.output.splitStatus.status ?? 0)
        }
        #expect(statuses == [200, 200, 429, 429], "\(statuses)")
    }

    @Test(
        "a refused credential is audited under the channel's identity: the address, or the uid and pid",
        .enabled(if: GuardedService.canSwitchUsers))
    func refusedCredentialsKeepTheCaller() async throws {
        let guarded = try await GuardedService.start()
        for headers in [
            [("Authorization", "Bearer grace_" + String(repeating: "0", count: 64))],
            [("Authorization", "Basic dXNlcjpwYXNz")],
        ] {
            let answer = try await guarded.request(
                "POST", "/gpus/\(Self.gpu)/reset", headers: headers, body: #"{"dryRun": true}"#)
            #expect(answer.status == 401)
        }
        let overSocket = try await guarded.runAs(
            uid: 65534, gid: GuardedService.socketGroup,
            [
                "/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--unix-socket", guarded.socketPath,
                "-H", "Authorization: Bearer nope", "-X", "DELETE", "http://localhost/jobs/x",
            ])
        #expect(overSocket.output.splitStatus.status == 401, "\(overSocket.output)")
        let trail = try await guarded.request("GET", "/audit?limit=20", headers: guarded.bearer(.admin))
        let refused = try trail.decode(AuditPage.self).items.filter { $0.status == 401 }
        #expect(
            refused.contains { $0.actor == "anonymous@127.0.0.1" && $0.action == "POST /gpus/{bdf}/reset" })
        #expect(!refused.contains { $0.actor == "anonymous" }, "\(refused.map(\.actor))")
        #expect(
            refused.contains { $0.actor.hasPrefix("uid:65534 pid:") && $0.action == "DELETE /jobs/{id}" },
            "\(refused.map(\.actor))")
    }

    @Test("a percent-encoded target is audited as the GPU it acted on, with the raw target beside it")
    func decodedTargets() async throws {
        let guarded = try await GuardedService.start()
        let encoded = "/gpus/%30%30%30%39%3A%30%31%3A%30%30%2E%30/reset"
        let answer = try await guarded.request(
            "POST", encoded, headers: guarded.bearer(.operator), body: #"{"dryRun": true}"#)
        #expect(answer.status == 200)
        let trail = try await guarded.request("GET", "/audit?limit=5", headers: guarded.bearer(.admin))
        let line = try #require(trail.decode(AuditPage.self).items.first { $0.status == 200 })
        #expect(line.target == "/gpus/0009:01:00.0/reset")
        #expect(line.rawTarget == encoded)
    }
}

/// A token revoked while its event stream is open (issue 19).
@Suite struct RevokedStreamTests {
    @Test("reloading the tokens ends the open event streams of a revoked token, and only those")
    func revokedTokenLosesItsStream() async throws {
        let guarded = try await GuardedService.start()
        let port = try #require(guarded.service.application.port)
        let viewer = guarded.tokens[.viewer]!
        let admin = guarded.tokens[.admin]!
        let (revoked, kept) = try await offPool { () throws -> (SSETestClient, SSETestClient) in
            let revoked = try SSETestClient(
                port: port, target: "/events", headers: [("Authorization", "Bearer \(viewer)")],
                receiveTimeoutSeconds: 60)
            let kept = try SSETestClient(
                port: port, target: "/events", headers: [("Authorization", "Bearer \(admin)")],
                receiveTimeoutSeconds: 60)
            try revoked.read { $0.status != 0 && $0.text.contains("retry:") }
            try kept.read { $0.status != 0 && $0.text.contains("retry:") }
            return (revoked, kept)
        }
        #expect(revoked.status == 200 && kept.status == 200)
        try TokenFile.revoke(path: guarded.tokenPath, name: "test-viewer")
        guarded.service.application.authenticator.replaceTokens(
            TokenVerifier(records: try TokenFile.load(path: guarded.tokenPath)))
        // The revoked viewer's stream ends cleanly; the admin's goes on and still gets events.
        try await offPool { try revoked.read { _ in false } }
        #expect(revoked.ended)
        let reset = try await guarded.request(
            "POST", "/gpus/0000:c3:00.0/reset", headers: guarded.bearer(.admin), body: "{}")
        #expect(reset.status == 202)
        try await offPool { try kept.read { $0.events.contains { $0.type == "job.queued" } } }
        #expect(!kept.ended)
        let again = try await guarded.request("GET", "/events?maxSeconds=1", headers: guarded.bearer(.viewer))
        #expect(again.status == 401)
    }
}

/// One caller cannot take every connection with streams or a trickled body (issue 19).
@Suite struct StreamShareTests {
    @Test("an account holds at most 16 open streams; the 17th is 429 and another account is still served")
    func streamsPerAccount() async throws {
        let guarded = try await GuardedService.start()
        let port = try #require(guarded.service.application.port)
        let viewer = guarded.tokens[.viewer]!
        let streams = try await offPool { () throws -> [SSETestClient] in
            try (0..<16).map { _ in
                let client = try SSETestClient(
                    port: port, target: "/events", headers: [("Authorization", "Bearer \(viewer)")],
                    receiveTimeoutSeconds: 30)
                try client.read { $0.text.contains("retry:") }
                return client
            }
        }
        #expect(streams.allSatisfy { $0.status == 200 })
        let refused = try await guarded.request("GET", "/events", headers: guarded.bearer(.viewer))
        #expect(refused.status == 429 && refused.text.contains("too-many-streams"), "\(refused.text)")
        let health = try await guarded.request("GET", "/healthz", headers: guarded.bearer(.admin))
        #expect(health.status == 200)
        for stream in streams { stream.hangUp() }
    }
}

extension StreamShareTests {
    @Test("a body trickled past its deadline closes the connection instead of holding it")
    func trickledBodyIsCutOff() async throws {
        let guarded = try await GuardedService.start(headerTimeoutSeconds: 1)
        let client = guarded.tcp
        let token = guarded.tokens[.operator]!
        let closed = try await offPool { () throws -> Bool in
            let fd = try client.connectSocket()
            defer { close(fd) }
            let head =
                "POST /gpus/0009:01:00.0/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            try client.sendAll(fd, Array(head.utf8))
            // Past the deadline (the head's own, 1 s), one more byte: the server closes.
            usleep(1_600_000)
            try? client.sendAll(fd, Array(" ".utf8))
            var buffer = [UInt8](repeating: 0, count: 4096)
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count == 0 || (count < 0 && errno == ECONNRESET)
        }
        #expect(closed)
    }
}

/// `--allow-origin` works from a browser: preflights are answered, answers are readable (issue 19).
@Suite struct CORSTests {
    static let origin = "https://dash.example"

    @Test("a preflight from an allowed origin is 204 without credentials; its answers carry the origin")
    func allowedOrigin() async throws {
        let guarded = try await GuardedService.start(allowedOrigins: [Self.origin])
        let preflight = try await guarded.request(
            "OPTIONS", "/gpus",
            headers: [
                ("Origin", Self.origin), ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "authorization"),
            ])
        #expect(preflight.status == 204)
        #expect(preflight.header("Access-Control-Allow-Origin") == Self.origin)
        #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
        #expect(preflight.header("Access-Control-Allow-Headers")?.contains("Authorization") == true)
        let read = try await guarded.request(
            "GET", "/gpus", headers: guarded.bearer(.viewer) + [("Origin", Self.origin)])
        #expect(read.status == 200)
        #expect(read.header("Access-Control-Allow-Origin") == Self.origin)
        #expect(read.header("Vary") == "Origin")
        // Without an Origin, the same answer names none.
        let plain = try await guarded.request("GET", "/gpus", headers: guarded.bearer(.viewer))
        #expect(plain.header("Access-Control-Allow-Origin") == nil)
    }

    @Test("a preflight or a request from another origin is refused")
    func otherOrigin() async throws {
        let guarded = try await GuardedService.start(allowedOrigins: [Self.origin])
        let preflight = try await guarded.request(
            "OPTIONS", "/gpus",
            headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")])
        #expect(preflight.status == 403 || preflight.status == 401)
        #expect(preflight.header("Access-Control-Allow-Origin") == nil)
        let post = try await guarded.request(
            "POST", "/gpus/0009:01:00.0/reset",
            headers: guarded.bearer(.operator) + [("Origin", "https://evil.example")], body: "{}")
        #expect(post.status == 403)
    }
}
