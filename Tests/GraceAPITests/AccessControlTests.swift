import FoundationEssentials
import GraceTestSupport
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Who may do what: every route with every role, peer credentials on the socket, tokens, the audit trail.
@Suite("Access control", .serialized)
struct AccessControlTests {
    static let gpu = "0000:c3:00.0"
    static let unknownJob = "00000000-0000-4000-8000-000000000000"

    /// A concrete request for a route: its placeholders filled and a body a handler accepts.
    static func concrete(_ method: String, _ pattern: String) -> (target: String, body: String?) {
        let target =
            pattern
            .replacingOccurrences(of: "{bdf}", with: gpu)
            .replacingOccurrences(of: "{id}", with: unknownJob)
        switch (method, pattern) {
        case ("POST", "/gpus/{bdf}/reset"): return (target, #"{"dryRun": true}"#)
        // The event stream lasts until the client leaves, unless told when to end.
        case ("GET", "/events"): return (target + "?maxSeconds=1", nil)
        case ("POST", _), ("PUT", _): return (target, "{}")
        default: return (target, nil)
        }
    }

    @Test(
        "every route with every role: no credential 401, too low a role 403, the right role the handler's answer"
    )
    func everyRouteEveryRole() async throws {
        let guarded = try await GuardedService.start()
        let routes = guarded.service.application.routes
        #expect(routes.count >= 14)
        #expect(routes.filter { $0.role == nil }.map(\.pattern) == ["/livez", "/readyz"])
        for route in routes {
            // The probes answer anyone (ProbeTests); every other route needs a role.
            guard let required = route.role else { continue }
            let (target, body) = Self.concrete(route.method, route.pattern)
            let anonymous = try await guarded.request(route.method, target, body: body)
            #expect(anonymous.status == 401, "\(route.method) \(route.pattern) without credentials")
            let problem = try anonymous.problem()
            #expect(problem.resolution.contains("graced token create"))
            #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Bearer realm=") == true)

            for role in Role.allCases {
                let response = try await guarded.request(
                    route.method, target, headers: guarded.bearer(role), body: body)
                let label = "\(route.method) \(route.pattern) as \(role)"
                if role.allows(required) {
                    #expect(
                        ![401, 403, 404, 405, 415, 421, 429].contains(response.status)
                            || isHandlerNotFound(response), "\(label): \(response.status) \(response.text)")
                } else {
                    #expect(response.status == 403, "\(label): \(response.status)")
                    let forbidden = try response.decode(Forbidden.self)
                    #expect(forbidden.requiredRole == required.rawValue, "\(label)")
                    #expect(forbidden.role == role.rawValue, "\(label)")
                    #expect(try response.problem().resolution.contains(required.rawValue))
                }
            }
        }
    }

    /// A 404 from the handler itself (an unknown job or binding), not from the router.
    private func isHandlerNotFound(_ response: RawHTTPClient.Response) -> Bool {
        response.status == 404
            && (response.text.contains("job-not-found") || response.text.contains("binding-not-found"))
    }

    @Test("a wrong, malformed or doubled Authorization header is refused, and the token never echoed")
    func badCredentials() async throws {
        let guarded = try await GuardedService.start()
        let unknown = try await guarded.request(
            "GET", "/gpus", headers: [("Authorization", "Bearer grace_" + String(repeating: "0", count: 64))])
        #expect(unknown.status == 401)
        #expect(unknown.header("WWW-Authenticate")?.contains("invalid_token") == true)
        #expect(!unknown.text.contains(String(repeating: "0", count: 64)))
        let basic = try await guarded.request("GET", "/gpus", headers: [("Authorization", "Basic YTpi")])
        #expect(basic.status == 401)
        let twice = try await guarded.request(
            "GET", "/gpus", headers: guarded.bearer(.viewer) + guarded.bearer(.admin))
        #expect(twice.status == 400)
        #expect(try twice.problem().type.hasSuffix("/ambiguous-credentials"))
        // The scheme is case-insensitive (RFC 9110).
        let lower = try await guarded.request(
            "GET", "/gpus", headers: [("Authorization", "bearer \(guarded.tokens[.viewer]!)")])
        #expect(lower.status == 200)
    }

    @Test("on the socket root is admin, and the audit trail names the process")
    func socketRootIsAdmin() async throws {
        let guarded = try await GuardedService.start()
        var mode = stat()
        #expect(stat(guarded.socketPath, &mode) == 0)
        #expect(mode.st_mode & 0o777 == 0o660)
        #expect(mode.st_gid == GuardedService.socketGroup)
        let audit = try await guarded.request("GET", "/audit", overSocket: true)
        #expect(audit.status == (geteuid() == 0 ? 200 : 401))
        guard geteuid() == 0 else { return }
        let reset = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", body: #"{"dryRun": true}"#, overSocket: true)
        #expect(reset.status == 200)
        let trail = try await guarded.request("GET", "/audit?limit=1", overSocket: true)
        let page = try trail.decode(AuditPage.self)
        let line = try #require(page.items.first)
        #expect(line.actor.hasPrefix("uid:0 pid:\(getpid())"))
        #expect(line.action == "POST /gpus/{bdf}/reset" && line.status == 200 && line.channel == "unix")
        #expect(line.source == "peer-credentials" && line.role == "admin")
    }

    @Test(
        "a member of the socket's group is an operator, anyone else cannot connect, and a token overrides",
        .enabled(if: GuardedService.canSwitchUsers))
    func socketGroupMembers() async throws {
        let guarded = try await GuardedService.start()
        let socket = guarded.socketPath
        let group = GuardedService.socketGroup
        let read = try await guarded.runAs(
            uid: 65534, gid: group, GuardedService.curlOverSocket(socket, "GET", "/gpus"))
        #expect(read.output.splitStatus.status == 200, "\(read.output)")
        let reset = try await guarded.runAs(
            uid: 65534, gid: group,
            GuardedService.curlOverSocket(
                socket, "POST", "/gpus/\(Self.gpu)/reset", body: #"{"dryRun": true}"#))
        #expect(reset.output.splitStatus.status == 200, "\(reset.output)")
        let audit = try await guarded.runAs(
            uid: 65534, gid: group, GuardedService.curlOverSocket(socket, "GET", "/audit"))
        #expect(audit.output.splitStatus.status == 403, "\(audit.output)")
        #expect(
            audit.output.contains(#""requiredRole":"admin""#) && audit.output.contains(#""role":"operator""#))
        let withToken = try await guarded.runAs(
            uid: 65534, gid: group,
            [
                "/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--unix-socket", socket, "-H",
                "Authorization: Bearer \(guarded.tokens[.admin]!)", "http://localhost/audit",
            ])
        #expect(withToken.output.splitStatus.status == 200, "\(withToken.output)")

        // Not in the group: the socket's mode keeps the process out before graced sees it.
        let outsider = try await guarded.runAs(
            uid: 65534, gid: 65533, GuardedService.curlOverSocket(socket, "GET", "/gpus"))
        #expect(outsider.status == 7, "curl's 'could not connect': \(outsider.output)")

        // The operator's reset is in the trail under its uid and process name.
        let trail = try await guarded.request("GET", "/audit?limit=20", headers: guarded.bearer(.admin))
        let lines = try trail.decode(AuditPage.self).items
        #expect(
            lines.contains {
                $0.actor.hasPrefix("uid:65534 pid:") && $0.actor.hasSuffix("(unverified: curl)")
                    && $0.status == 200
                    && $0.role == "operator"
            })
    }

    @Test("a job records who asked for it, and refused changes are in the audit trail too")
    func requestedByAndRefusals() async throws {
        let guarded = try await GuardedService.start()
        let accepted = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.operator), body: "{}")
        #expect(accepted.status == 202)
        let job = try accepted.decode(JobView.self)
        #expect(job.requestedBy == "token:test-operator")
        // The job's own entry (graced, job.reset) is written when it ends: before the refusals, so
        // that they are the newest two entries.
        let store = try GraceStore(path: guarded.service.databasePath)
        try await waitUntil {
            try store.auditEntries(limit: 20).contains {
                $0.actor == "graced" && $0.detailJSON.contains(job.id)
            }
        }
        let refused = try await guarded.request(
            "POST", "/gpus/\(Self.gpu)/reset", headers: guarded.bearer(.viewer), body: "{}")
        #expect(refused.status == 403)
        let anonymous = try await guarded.request("DELETE", "/jobs/\(job.id)")
        #expect(anonymous.status == 401)

        let trail = try await guarded.request("GET", "/audit?limit=2", headers: guarded.bearer(.admin))
        let page = try trail.decode(AuditPage.self)
        #expect(page.items.count == 2 && page.next != nil)
        #expect(page.items[0].actor == "anonymous@127.0.0.1" && page.items[0].status == 401)
        #expect(page.items[0].action == "DELETE /jobs/{id}")
        #expect(page.items[1].actor == "token:test-viewer" && page.items[1].status == 403)
        let older = try await guarded.request(
            "GET", "/audit?limit=5&before=\(page.next!)", headers: guarded.bearer(.admin))
        let accepting = try older.decode(AuditPage.self).items.first { $0.status == 202 }
        #expect(accepting?.actor == "token:test-operator")
        #expect(accepting?.job == job.id && accepting?.source == "token" && accepting?.channel == "tcp")
    }

    @Test(
        "mutual TLS: a certificate from the trusted CA identifies the caller; plain HTTP is not spoken",
        .enabled(if: access("/usr/bin/openssl", X_OK) == 0 && access("/usr/bin/curl", X_OK) == 0))
    func mutualTLS() async throws {
        let pki = try TestPKI()
        let guarded = try await GuardedService.start(
            tls: HTTPServer.TLSMaterial(
                certificatePEM: pki.serverCertificate, keyPEM: pki.serverKey, clientCAPEM: pki.caCertificate))
        let port = try #require(guarded.service.application.port)
        let url = "https://127.0.0.1:\(port)"
        func curl(_ extra: [String], _ path: String) async throws -> (body: String, status: Int?) {
            let command =
                ["/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", pki.path("server.pem")] + extra
                + [url + path]
            let folder = pki.folder
            return try await offPool { try ChildProcess.run(command, in: folder) }.output.splitStatus
        }
        let client = ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
        #expect(try await curl(client, "/gpus").status == 200)
        let audit = try await curl(client, "/audit")
        #expect(audit.status == 403 && audit.body.contains(#""role":"operator""#), "\(audit)")
        #expect(try await curl([], "/gpus").status == 401)
        #expect(
            try await curl(["-H", "Authorization: Bearer \(guarded.tokens[.admin]!)"], "/audit").status == 200
        )
        let reset = try await curl(client + ["-X", "POST"], "/gpus/\(Self.gpu)/reset")
        #expect(reset.status == 202)
        #expect(reset.body.contains(#""requestedBy":"cert:CN=dashboard"#), "\(reset.body)")
        // A certificate from another CA is refused, not treated as absent.
        #expect(
            try await curl(["--cert", pki.path("rogue.pem"), "--key", pki.path("rogue.key")], "/gpus").status
                == 401)
        // Plain HTTP to the TLS port gets no answer that a client could take for one.
        let plain = try? await offPool { try guarded.tcp.request("GET", "/gpus") }
        #expect(plain?.status != 200)
        // A web server's certificate from the same CA (serverAuth only) identifies no one, and neither
        // does graced's own; a clientAuth one does.
        let web = ["--cert", pki.path("web.pem"), "--key", pki.path("web.key")]
        #expect(try await curl(web, "/gpus").status == 401)
        #expect(
            try await curl(["--cert", pki.path("server.pem"), "--key", pki.path("server.key")], "/gpus")
                .status == 401)
        let clientAuth = ["--cert", pki.path("clientauth.pem"), "--key", pki.path("clientauth.key")]
        #expect(try await curl(clientAuth, "/gpus").status == 200)
    }

    @Test(
        "mutual TLS with a CRL: a revoked client certificate identifies no one, the others still do",
        .enabled(if: access("/usr/bin/openssl", X_OK) == 0 && access("/usr/bin/curl", X_OK) == 0))
    func revokedClientCertificate() async throws {
        let pki = try TestPKI()
        let guarded = try await GuardedService.start(
            tls: HTTPServer.TLSMaterial(
                certificatePEM: pki.serverCertificate, keyPEM: pki.serverKey, clientCAPEM: pki.caCertificate,
                clientCRLPEM: pki.crl))
        let port = try #require(guarded.service.application.port)
        func status(_ name: String) async throws -> Int? {
            let command = [
                "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                pki.path("server.pem"),
                "--cert", pki.path("\(name).pem"), "--key", pki.path("\(name).key"),
                "https://127.0.0.1:\(port)/gpus",
            ]
            let folder = pki.folder
            return Int(try await offPool { try ChildProcess.run(command, in: folder) }.output)
        }
        #expect(try await status("revoked") == 401)
        #expect(try await status("clientauth") == 200)
    }
}

struct Forbidden: Decodable {
    var requiredRole: String
    var role: String
}

struct AuditPage: Decodable {
    struct Line: Decodable {
        var id: Int64
        var at: String
        var actor: String
        var action: String
        var target: String
        var status: Int?
        var job: String?
        var channel: String?
        var role: String?
        var source: String?
        var repeated: Int
        var lastAt: String?
        var rawTarget: String?
    }

    var items: [Line]
    var next: String?
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

/// A throwaway CA, a server certificate for 127.0.0.1, a client certificate from the CA and one
/// from a rogue CA, made with openssl for one test.
struct TestPKI {
    let folder: String

    init() throws {
        folder = makeTemporaryFolder("/tmp/graced-pki-XXXXXX")
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=graced test CA",
            ])
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem", "-days", "1", "-subj", "/CN=rogue CA",
            ])
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "server.key", "-out", "server.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        // client: no key purpose (any); web: serverAuth only (a web server's certificate from the
        // same CA); clientauth: clientAuth; revoked: clientAuth, then listed in the CA's CRL.
        let issued: [(name: String, ca: String, subject: String, purpose: String?)] = [
            ("client", "ca", "/CN=dashboard", nil), ("rogue", "rogue-ca", "/CN=dashboard", nil),
            ("web", "ca", "/CN=www.internal.example", "serverAuth"),
            ("clientauth", "ca", "/CN=orchestrator", "clientAuth"),
            ("revoked", "ca", "/CN=leaked", "clientAuth"),
        ]
        for (name, ca, subject, purpose) in issued {
            try openssl(["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            var extensions: [String] = []
            if let purpose {
                try write("extendedKeyUsage = \(purpose)\n", to: path("\(name).ext"))
                extensions = ["-extfile", "\(name).ext"]
            }
            try openssl(
                [
                    "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key",
                    "-CAcreateserial",
                    "-out", "\(name).pem", "-days", "1",
                ] + extensions)
        }
        // A CRL of the CA that lists `revoked`: `openssl ca` keeps its state in a small folder.
        try write("", to: path("index.txt"))
        try write(
            """
            [ca]
            default_ca = test
            [test]
            database = index.txt
            crlnumber = crlnumber
            default_md = sha256
            default_crl_days = 1

            """, to: path("ca.cnf"))
        try write("01\n", to: path("crlnumber"))
        try openssl([
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-revoke", "revoked.pem",
        ])
        try openssl([
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-gencrl", "-out", "ca.crl",
        ])
    }

    var crl: String { ChildProcess.read(path("ca.crl")) }

    private func write(_ text: String, to file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RawHTTPClient.Failure(description: "open \(file): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw RawHTTPClient.Failure(description: "write \(file): errno \(errno)")
        }
    }

    func path(_ name: String) -> String { folder + "/" + name }
    var caCertificate: String { ChildProcess.read(path("ca.pem")) }
    var serverCertificate: String { ChildProcess.read(path("server.pem")) }
    var serverKey: String { ChildProcess.read(path("server.key")) }

    private func openssl(_ arguments: [String]) throws {
        let result = try ChildProcess.run(
            ["/bin/sh", "-c", "cd \(folder) && exec /usr/bin/openssl \"$@\"", "openssl"] + arguments,
            in: folder)
        guard result.status == 0 else {
            throw RawHTTPClient.Failure(
                description: "openssl \(arguments.joined(separator: " ")): \(result.output)")
        }
    }
}
