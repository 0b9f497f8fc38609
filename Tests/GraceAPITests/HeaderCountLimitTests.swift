import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// A first request whose head fits in 32 KiB but carries more fields than libmicrohttpd's
/// connection memory holds: one problem+json 431 from the gate, never MHD's HTML page or silence.
@Suite("Header count limit", .serialized)
struct HeaderCountLimitTests {
    static func head(_ target: String = "/livez", fields: [String]) -> String {
        "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + fields.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    static let smallHeaders = (0..<1000).map { "X-H\($0): v" }

    @Test(
        "1,000 small headers, 500 query arguments or 500 cookies: one 431 problem, on TCP and on the socket",
        arguments: [
            head(fields: smallHeaders),
            head("/livez?" + (0..<500).map { "a\($0)=1" }.joined(separator: "&"), fields: []),
            head(fields: ["Cookie: " + (0..<500).map { "c\($0)=1" }.joined(separator: "; ")]),
        ])
    func manySmallFields(_ head: String) async throws {
        #expect(head.utf8.count < HeadGate.headLimit)
        let guarded = try await GuardedService.start()
        for client in [guarded.tcp, guarded.unix] {
            let bytes = try await offPool { try client.exchangeRaw([Array(head.utf8)]) }
            let answer = String(decoding: bytes, as: UTF8.self)
            #expect(
                answer.components(separatedBy: "HTTP/1.1 ").count == 2,
                "one status line: \(answer.prefix(300))")
            let response = try RawHTTPClient.parse(bytes)
            #expect(response.status == 431, "\(answer.prefix(300))")
            #expect(response.header("Content-Type") == "application/problem+json")
            let problem = try response.problem()
            #expect(problem.type.hasSuffix("/request-head-too-large"))
            #expect(!answer.contains("<html"))
        }
        // The listener still serves.
        #expect(try await guarded.request("GET", "/livez").status == 200)
    }

    @Test("a head MHD can hold is handed over: 300 small headers, a 30 KiB header")
    func fittingHeadsPass() async throws {
        let guarded = try await GuardedService.start()
        for head in [
            Self.head(fields: (0..<300).map { "X-H\($0): v" }),
            Self.head(fields: ["X-Big: " + String(repeating: "b", count: 30_000)]),
        ] {
            let bytes = try await offPool { try guarded.tcp.exchangeRaw([Array(head.utf8)]) }
            #expect(try RawHTTPClient.parse(bytes).status == 200)
        }
    }

    @Test("the cost: the head's bytes, and 64 for each header, query argument and cookie")
    func cost() throws {
        let plain = Array(Self.head(fields: ["Accept: */*"]).utf8)
        #expect(HeaderCountLimit.headLength(plain[...]) == plain.count)
        #expect(HeaderCountLimit.headLength((plain + Array("{\"body\": 1}".utf8))[...]) == plain.count)
        #expect(HeaderCountLimit.headLength(Array("\r\nGET / HTTP/1.1\nHost: x\n\nrest".utf8)[...]) == 26)
        #expect(HeaderCountLimit.queryArguments(Array("GET /a?x=1&y=2&& HTTP/1.1".utf8)[...]) == 4)
        #expect(HeaderCountLimit.queryArguments(Array("GET /a HTTP/1.1".utf8)[...]) == 0)
        #expect(HeaderCountLimit.cookies(HTTPHeaders([("Cookie", "a=1; b=2"), ("cookie", "c=3")])) == 3)
        let line = Array("GET /livez HTTP/1.1".utf8)[...]
        #expect(HeaderCountLimit.problem(plain[...], requestLine: line, headers: HTTPHeaders()) == nil)
        let many = HTTPHeaders((0..<500).map { ("X-H\($0)", "v") })
        let problem = try #require(HeaderCountLimit.problem(plain[...], requestLine: line, headers: many))
        #expect(problem.status == 431)
    }
}
