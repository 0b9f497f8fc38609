import FoundationEssentials
import GraceTestSupport
import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// gracectl as remote tooling uses it: over TLS with --cacert (and a client certificate), and with
/// --output json for scripts.
@Suite("gracectl over TLS and as JSON", .serialized)
struct GraceCtlRemoteTests {
    static let h100 = "0000:c3:00.0"

    static func gracectl(_ arguments: [String], in folder: String) async throws -> (
        status: Int32, output: String
    ) {
        let command = [ChildProcess.binary("gracectl")] + arguments
        return try await offPool { try ChildProcess.run(command, in: folder) }
    }

    @Test(
        "TLS: the right CA verifies, a wrong CA or name sends nothing, a client certificate identifies",
        .enabled(if: access("/usr/bin/openssl", X_OK) == 0))
    func overTLS() async throws {
        let pki = try TestPKI()
        let guarded = try await GuardedService.start(
            tls: HTTPServer.TLSMaterial(
                certificatePEM: pki.serverCertificate, keyPEM: pki.serverKey, clientCAPEM: pki.caCertificate))
        let port = try #require(guarded.service.application.port)
        let server = ["--server", "https://127.0.0.1:\(port)"]
        let viewer = ["--token", guarded.tokens[.viewer]!]
        let trusted = ["--cacert", pki.path("server.pem")]

        let listed = try await Self.gracectl(["gpus"] + server + trusted + viewer, in: pki.folder)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.hasPrefix("BDF") && listed.output.contains(Self.h100))

        // Another CA: the handshake fails, and nothing (the token included) is sent.
        // Counted over the socket (root is admin there): the TCP listener speaks TLS only.
        let scrape = { Exposition(try await guarded.request("GET", "/metrics", overSocket: true).text) }
        let before = try await scrape()
        for wrong in [pki.path("ca.pem"), pki.path("rogue-ca.pem")] {
            let refused = try await Self.gracectl(
                ["gpus"] + server + ["--cacert", wrong] + viewer, in: pki.folder)
            #expect(refused.status == 1, "\(refused.output)")
            #expect(refused.output.contains("does not verify"), "\(refused.output)")
            #expect(!refused.output.contains(guarded.tokens[.viewer]!))
        }
        // The right CA, but a name the certificate does not list (it names 127.0.0.1 only).
        let misnamed = try await Self.gracectl(
            ["gpus", "--server", "https://localhost:\(port)"] + trusted + viewer, in: pki.folder)
        #expect(misnamed.status == 1 && misnamed.output.contains("does not verify"), "\(misnamed.output)")
        // No request reached graced from those three.
        let after = try await scrape()
        let answered = { (scrape: Exposition) in
            scrape.samples.filter {
                $0.name == "graceapi_http_requests_total" && $0.labels["route"] == "/gpus"
            }
            .map(\.value).reduce(0, +)
        }
        #expect(answered(after) == answered(before))

        // A client certificate from the CA graced trusts: the caller is cert:CN=dashboard, an operator.
        let certificate = ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
        let plan = try await Self.gracectl(
            ["reset", Self.h100, "--dry-run"] + server + trusted + certificate, in: pki.folder)
        #expect(plan.status == 0, "\(plan.output)")
        #expect(plan.output.contains("\"plan\""), "\(plan.output)")
        let anonymous = try await Self.gracectl(["gpus"] + server + trusted, in: pki.folder)
        #expect(
            anonymous.status == 1 && anonymous.output.contains("not authenticated"), "\(anonymous.output)")
        let rogue = try await Self.gracectl(
            ["gpus"] + server + trusted + ["--cert", pki.path("rogue.pem"), "--key", pki.path("rogue.key")],
            in: pki.folder)
        #expect(rogue.status == 1, "\(rogue.output)")

        // The TLS files mean nothing without https://, and a certificate needs its key.
        let plain = try await Self.gracectl(
            ["gpus", "--server", "127.0.0.1:\(port)"] + trusted, in: pki.folder)
        #expect(plain.status == 64 && plain.output.contains("https://"), "\(plain.output)")
        let keyless = try await Self.gracectl(
            ["gpus"] + server + trusted + ["--cert", pki.path("client.pem")], in: pki.folder)
        #expect(keyless.status == 64 && keyless.output.contains("--cert and --key go together"))
    }

    @Test("--output json prints the API's own objects: each parses and equals what graced serves")
    func outputJSON() async throws {
        let service = try await RunningService.start()
        let server = ["--server", "127.0.0.1:\(service.application.port!)", "--output", "json"]
        let folder = service.simulated.folder

        // A reset followed to its end prints one object: the job as GET /jobs/{id} serves it.
        let reset = try await Self.gracectl(["reset", Self.h100] + server, in: folder)
        #expect(reset.status == 0, "\(reset.output)")
        let job = try JSONDecoder().decode(AnyJSON.self, from: Data(reset.output.utf8))
        guard case .object(let members) = job, case .string(let id) = members["id"] else {
            Issue.record("not a job: \(reset.output)")
            return
        }
        #expect(members["state"] == .string("succeeded"))
        let served = try await service.get("/jobs/\(id)")
        #expect(job == (try JSONDecoder().decode(AnyJSON.self, from: Data(served.body))))

        for (arguments, path) in [(["job", id], "/jobs/\(id)"), (["jobs"], "/jobs?limit=20")] {
            let printed = try await Self.gracectl(arguments + server, in: folder)
            #expect(printed.status == 0, "\(printed.output)")
            let answer = try await service.get(path)
            #expect(printed.output == answer.text + "\n", "\(arguments)")
        }
        // Listings parse, and hold what graced lists (the health watch may look again in between).
        let gpus = try await Self.gracectl(["gpus"] + server, in: folder)
        let printed = try JSONDecoder().decode(GPUListBody.self, from: Data(gpus.output.utf8)).items.map(
            \.bdf)
        let listed = try await service.get("/gpus").decode(GPUListBody.self).items.map(\.bdf)
        #expect(printed == listed && printed.count == 6)
        let gpu = try await Self.gracectl(["gpu", Self.h100] + server, in: folder)
        #expect(try JSONDecoder().decode(GPUDevice.self, from: Data(gpu.output.utf8)).bdf == Self.h100)

        // watch: one event object per line, as the stream's `data:` line carried it.
        struct Phase: Encodable { var phase: String }
        let published = service.application.events.publish(
            type: .jobPhase, gpu: Self.h100, job: "j-1", payload: Phase(phase: "resetting"))
        let watched = try await Self.gracectl(
            ["watch", "--after", "\(published.id! - 1)", "--types", "job.phase", "--seconds", "1"] + server,
            in: folder)
        #expect(watched.status == 0, "\(watched.output)")
        let events = try watched.output.split(separator: "\n").map {
            try JSONDecoder().decode(AnyJSON.self, from: Data($0.utf8))
        }
        #expect(events.count == 1, "\(watched.output)")
        guard case .object(let event) = events.first else { return }
        #expect(event["id"] == .number(Double(published.id!)) && event["type"] == .string("job.phase"))
        #expect(event["data"] == .object(["phase": .string("resetting")]) && event["job"] == .string("j-1"))

        // The table is still the default.
        let table = try await Self.gracectl(
            ["job", id, "--server", "127.0.0.1:\(service.application.port!)"], in: folder)
        #expect(table.output.hasPrefix("job \(id): reset of \(Self.h100), succeeded"), "\(table.output)")
    }
}

/// Any JSON value, compared member by member.
enum AnyJSON: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([AnyJSON])
    case object([String: AnyJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([AnyJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: AnyJSON].self))
        }
    }
}
