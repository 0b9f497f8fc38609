import GraceSimulation
import Logging
import Passthrough
import PassthroughSimulator
import Store

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// A fuzzed method, target and header fields through the router of a real `Application` (on the
/// simulated demo host, its server never started): every request is routed or answered 404/405,
/// and the reads (GET and HEAD) run their handlers, so path parameters, query strings and
/// conditional headers reach the code that reads them. Every refusal is problem+json with a
/// resolution. Changes are routed but not run: they would start jobs on the simulated host.
///
/// Input: the method on the first line, the target on the second, `Name: value` fields after it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let lines = String(decoding: bytes, as: UTF8.self).split(
        separator: "\n", maxSplits: 16, omittingEmptySubsequences: false)
    let method = lines.count > 1 ? String(lines[0]) : "GET"
    let target = String(lines.count > 1 ? lines[1] : lines.first ?? "")
    var headers = HTTPHeaders()
    for line in lines.dropFirst(2) {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append(
            name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop { $0 == " " }))
    }
    let request = HTTPRequest(method: method, rawTarget: target, headers: headers)
    switch Fixture.shared.router.resolve(method: request.method, path: request.path) {
    case .unmatched(let response):
        precondition([404, 405].contains(response.status), "unmatched answered \(response.status)")
        expectProblem(response)
    case .matched(let match):
        guard method == "GET" || method == "HEAD" else { break }
        if case .respond(let response) = match.handler(request, match.parameters) {
            expectProblem(response)
        }
    }
    return 0
}

private func expectProblem(_ response: HTTPResponse) {
    precondition((200..<600).contains(response.status), "status \(response.status)")
    guard response.status >= 400 else { return }
    let body = String(decoding: response.body, as: UTF8.self)
    precondition(body.contains("\"resolution\""), "\(response.status) without a resolution: \(body)")
}

/// One application for the whole run, over a demo host in a temporary folder removed at exit.
private struct Fixture: Sendable {
    static let shared = Fixture()

    let host: SimulatedHost
    let application: Application
    var router: Router { application.server.router }

    init() {
        do {
            host = try SimulatedHost.createTemporary(prefix: "graceapi-fuzz")
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            application = try Application(
                host: .simulated(host),
                store: try GraceStore(path: host.folder + "/graced.sqlite"), rescanIntervalSeconds: 0,
                logger: logger)
            try application.inventory.refresh()
        } catch {
            fatalError("cannot set up the fuzzed application: \(error)")
        }
        atexit { try? Fixture.shared.host.removeFiles() }
    }
}
