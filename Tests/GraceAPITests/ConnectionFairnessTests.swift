import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// No caller can take a listener's connections from the others (issue 19, finding 2; issue 22's
/// single count): clients count by address group until their head is in, then by account.
@Suite struct ConnectionFairnessTests {
    @Test("every loopback address is one client, IPv6 counts by /64, a mapped IPv4 address as itself")
    func clientGroups() {
        let loopbacks = [
            ClientGroup.key(ipv4: [127, 0, 0, 1]), ClientGroup.key(ipv4: [127, 0, 0, 2]),
            ClientGroup.key(ipv4: [127, 200, 3, 4]),
            ClientGroup.key(ipv6: Array(repeating: 0, count: 15) + [1]),
            ClientGroup.key(ipv6: Array(repeating: 0, count: 10) + [0xff, 0xff, 127, 0, 0, 9]),
        ]
        #expect(Set(loopbacks).count == 1)
        #expect(ClientGroup.key(ipv4: [10, 0, 0, 1]) != ClientGroup.key(ipv4: [10, 0, 0, 2]))
        #expect(
            ClientGroup.key(ipv6: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])
                == ClientGroup.key(ipv4: [10, 0, 0, 1]))
        let site: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]
        #expect(
            ClientGroup.key(ipv6: site + [0, 0, 0, 0, 0, 0, 0, 1])
                == ClientGroup.key(ipv6: site + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
        #expect(
            ClientGroup.key(ipv6: site + Array(repeating: 0, count: 8))
                != ClientGroup.key(
                    ipv6: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + Array(repeating: 0, count: 8)))
    }

    @Test(
        "heads trickled from all over 127/8 do not lock out an admin: the oldest unfinished heads make room")
    func trickledHeadsFromManyLoopbackAddresses() async throws {
        let guarded = try await GuardedService.start(connectionLimit: 24, perClientConnectionLimit: 4)
        let admin = guarded.bearer(.admin)
        let tcp = guarded.tcp
        let (status, stillOpen) = try await offPool { () throws -> (Int, Int) in
            // Ten addresses, four unfinished heads each: forty, where the listener holds 24.
            var attackers: [Int32] = []
            defer { attackers.forEach { close($0) } }
            for address in UInt32(2)...11 {
                var from = tcp
                from.sourceAddress = 0x7F00_0000 + address
                for _ in 0..<4 {
                    let fd = try from.connectSocket()
                    attackers.append(fd)
                    try from.sendAll(fd, Array("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8))
                }
            }
            let status = try tcp.request("GET", "/healthz", headers: admin).status
            // The gate took every attacker before the admin (one queue, in order): those it let go are
            // closed by now.
            let stillOpen = attackers.filter { fd in
                var byte: UInt8 = 0
                return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) < 0 && errno == EAGAIN
            }.count
            return (status, stillOpen)
        }
        #expect(status == 200)
        // All of loopback is one client: at most its limit of unfinished heads is held.
        #expect(stillOpen <= 4, "\(stillOpen) unfinished heads still held")
        let overSocket = try await guarded.request("GET", "/healthz", headers: admin, overSocket: true)
        #expect(overSocket.status == 200)
        await guarded.service.stop()
    }

    /// What the counting above relies on: a caller that never says who it is cannot keep a
    /// connection in libmicrohttpd (which closes a connection whose request was answered at its head).
    @Test("a caller without a role gets its 401 and loses the connection")
    func anonymousRefusalClosesTheConnection() async throws {
        let guarded = try await GuardedService.start()
        let tcp = guarded.tcp
        let (response, ended) = try await offPool { () throws -> (RawHTTPClient.Response, Bool) in
            let fd = try tcp.connectSocket()
            defer { close(fd) }
            try tcp.sendAll(fd, Array("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            let response = try HTTPServerTests.receiveOne(fd)
            var byte: UInt8 = 0
            let count = recv(fd, &byte, 1, 0)
            return (response, count == 0 || (count < 0 && errno == ECONNRESET))
        }
        #expect(response.status == 401)
        #expect(response.header("Connection")?.lowercased() == "close")
        #expect(ended)
        await guarded.service.stop()
    }

    @Test("an account holds at most its limit of connections; another account on the same address is served")
    func connectionsPerAccount() async throws {
        let guarded = try await GuardedService.start(perClientConnectionLimit: 3)
        let tcp = guarded.tcp
        let viewer = guarded.tokens[.viewer]!
        let admin = guarded.tokens[.admin]!
        @Sendable func ask(_ fd: Int32, _ token: String) throws -> RawHTTPClient.Response {
            try tcp.sendAll(
                fd,
                Array(
                    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n".utf8)
            )
            return try HTTPServerTests.receiveOne(fd)
        }
        let (held, refused, other) = try await offPool {
            () throws -> ([Int32], RawHTTPClient.Response, RawHTTPClient.Response) in
            let held = try (0..<3).map { _ in
                let fd = try tcp.connectSocket()
                #expect(try ask(fd, viewer).status == 200)
                return fd
            }
            let extra = try tcp.connectSocket()
            defer { close(extra) }
            let refused = try ask(extra, viewer)
            let another = try tcp.connectSocket()
            defer { close(another) }
            return (held, refused, try ask(another, admin))
        }
        #expect(refused.status == 429 && refused.text.contains("too-many-connections"), "\(refused.text)")
        #expect(refused.header("Connection")?.lowercased() == "close")
        #expect(other.status == 200)
        // One of the viewer's connections closed, the account has room again once graced sees it go.
        close(held[0])
        try await waitFor(seconds: 20) {
            await offPool { () -> Bool in
                guard let fd = try? tcp.connectSocket() else { return false }
                defer { close(fd) }
                return (try? ask(fd, viewer).status) == 200
            }
        }
        held.dropFirst().forEach { close($0) }
        await guarded.service.stop()
    }
}
