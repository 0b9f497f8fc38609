import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// The shortcuts a request takes on its way to a handler (a path without placeholders found by
/// its text, a target split by bytes, a `Host` remembered per connection) answer exactly as the
/// long way does.
@Suite struct HTTPFastPathTests {
    static func router() -> Router {
        var router = Router()
        // A placeholder route registered first must still lose to the literal one.
        router.get("/{any}") { _, parameters in .respond(.text("any=\(parameters["any"] ?? "?")")) }
        router.get("/plain") { _, _ in .respond(.text("plain GET")) }
        router.get("/both") { _, _ in .respond(.text("both GET")) }
        router.add("HEAD", "/both", role: .viewer) { _, _ in .respond(.text("both HEAD")) }
        router.post("/only-post") { _, _ in .respond(.text("only POST")) }
        return router
    }

    func route(_ method: String, _ target: String) -> (String?, Int?, String?) {
        guard
            case .respond(let response) = Self.router().handle(HTTPRequest(method: method, rawTarget: target))
        else { return (nil, nil, nil) }
        return (String(decoding: response.body, as: UTF8.self), response.status, response.header("Allow"))
    }

    @Test("a literal path beats a placeholder registered before it; HEAD falls back to GET")
    func literalRoutes() {
        #expect(route("GET", "/plain").0 == "plain GET")
        #expect(route("HEAD", "/plain").0 == "plain GET")
        #expect(route("GET", "/plain?x=1").0 == "plain GET")
        #expect(route("GET", "/other").0 == "any=other")
    }

    @Test("a pattern's own HEAD route wins over its GET")
    func explicitHead() {
        #expect(route("HEAD", "/both").0 == "both HEAD")
        #expect(route("GET", "/both").0 == "both GET")
    }

    @Test("a literal path without the request's method falls through to placeholders, then 405")
    func literalWithoutTheMethod() {
        #expect(route("GET", "/only-post").0 == "any=only-post")
        let put = route("PUT", "/only-post")
        #expect(put.1 == 405)
        #expect(put.2 == "GET, HEAD, POST")
    }

    @Test("a target splits the same by bytes (ASCII) as by characters (anything else)")
    func targetSplit() {
        for target in ["/a?b=c#d", "/a#b?c", "/a?", "?x", "", "/a", "/é?x=ü#f", "/a\u{301}?b", "/x?#\u{301}"]
        {
            let split = HTTPRequest.split(target)
            let withoutFragment = target.prefix { $0 != "#" }
            let expected: (Substring, Substring) =
                withoutFragment.firstIndex(of: "?").map {
                    (withoutFragment[..<$0], withoutFragment[withoutFragment.index(after: $0)...])
                } ?? (withoutFragment, "")
            #expect(split.path == expected.0, "\(target)")
            #expect(split.query == expected.1, "\(target)")
        }
    }

    @Test("on one kept-alive connection, each request's Host is checked")
    func hostPerRequest() async throws {
        let server = HTTPServer(
            configuration: HTTPServer.Configuration(
                listeners: [HTTPServer.Listener(address: .tcp(host: "127.0.0.1", port: 0), noAuth: true)]),
            router: Self.router())
        let raw = try await server.serving {
            let client = RawHTTPClient(port: try #require(server.port))
            return try await offPool { () throws -> [UInt8] in
                let fd = try client.connectSocket()
                defer { close(fd) }
                let heads =
                    "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    + "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    + "GET /plain HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n"
                try client.sendAll(fd, Array(heads.utf8))
                return try client.receiveAll(fd)
            }
        }
        // After the 421 MHD may close the connection (the refusal is queued before the head is
        // fully processed); what matters is that the third request is refused.
        let statuses = PreparedResponseTests.split(raw).map(\.status)
        #expect(statuses.prefix(3) == [200, 200, 421])
    }
}
