import FoundationEssentials
import Testing

@testable import GraceAPI
@testable import GraceHTTP

@Suite struct HTTPMessageTests {
    @Test func targetSplitsIntoRawPathAndDecodedQuery() {
        let request = HTTPRequest(
            method: "GET", rawTarget: "/x%2Fy/z?a=1&b=two+words&c=%E2%9C%93&a=2&bad=%G1%")
        #expect(request.path == "/x%2Fy/z")
        #expect(request.query == ["a": "1", "b": "two words", "c": "✓", "bad": "%G1%"])
        #expect(HTTPRequest(method: "GET", rawTarget: "/p#frag").path == "/p")
        #expect(HTTPRequest(method: "GET", rawTarget: "/p?").query.isEmpty)
    }

    @Test func headersAreCaseInsensitive() {
        let headers = HTTPHeaders([("Content-Type", "a"), ("X-Many", "1"), ("x-many", "2")])
        #expect(headers["content-type"] == "a")
        #expect(headers["CONTENT-TYPE"] == "a")
        #expect(headers["Content-Typ"] == nil)
        #expect(headers.values(for: "X-MANY") == ["1", "2"])
    }

    @Test func percentDecoding() {
        #expect(PercentDecoding.decode("a%20b+c") == "a b+c")
        #expect(PercentDecoding.decode("a%20b+c", plusAsSpace: true) == "a b c")
        #expect(PercentDecoding.decode("%zz%4") == "%zz%4")
        #expect(PercentDecoding.decode("%FF") == "\u{FFFD}")
    }

    struct Holder: Encodable, Sendable {
        let pid: Int
        let name: String
    }

    @Test func problemEncodesSortedWithExtensions() throws {
        let problem = Problem(
            slug: "device-busy", title: "Device Busy", status: 409, detail: "GPU in use.",
            instance: "/gpus/x", resolution: "Stop the listed processes, then retry.",
            extensions: ["holders": [Holder(pid: 7, name: "qemu")], "status": 200, "allowed": ["GET"]])
        let text = String(decoding: problem.jsonBytes(), as: UTF8.self)
        #expect(
            text == #"{"allowed":["GET"],"detail":"GPU in use.","holders":[{"name":"qemu","pid":7}],"#
                + #""instance":"/gpus/x","resolution":"Stop the listed processes, then retry.","status":409,"#
                + #""title":"Device Busy","type":"https://graceapi.dev/problems/device-busy"}"#)
        let response = HTTPResponse.problem(problem)
        #expect(response.status == 409)
        #expect(response.header("content-type") == "application/problem+json")
    }

    @Test func problemWithoutInstanceOmitsIt() {
        let text = String(
            decoding: Problem(title: "Teapot", status: 418, detail: "d", resolution: "r").jsonBytes(),
            as: UTF8.self)
        #expect(!text.contains("instance"))
        #expect(text.contains(#""type":"about:blank""#))
    }

    @Test func textAndJSONHelpers() {
        let text = HTTPResponse.text("hi", status: 202)
        #expect(text.status == 202)
        #expect(text.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(text.body == Array("hi".utf8))
        let json = HTTPResponse.json(["b": 1, "a": 2])
        #expect(String(decoding: json.body, as: UTF8.self) == #"{"a":2,"b":1}"#)
        #expect(HTTPResponse.json(["x": Double.nan]).status == 500)
    }

    /// The fields of a head as `RequestHead` reads them, or nil while incomplete, or ["malformed"].
    static func fields(_ head: String) -> [String]? {
        switch RequestHead.read(Array(head.utf8)[...]) {
        case .incomplete: nil
        case .malformed: ["malformed"]
        case .complete(_, let headers): headers.map { "\($0.name)=\($0.value)" }
        }
    }

    @Test func requestHeadIsReadAsLibmicrohttpdReadsIt() {
        #expect(Self.fields("GET / HTTP/1.1\r\nHost: a\r\n") == nil)
        #expect(Self.fields("GET / HTTP/1.1\r\nHost: a\r\n\r") == nil)
        #expect(Self.fields("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody") == ["Host=a"])
        #expect(Self.fields("GET / HTTP/1.1\r\n\r\n") == [])
        // Bare LF ends a line; blank lines before the request line are skipped.
        #expect(Self.fields("\r\n\nGET / HTTP/1.1\nContent-Length: abc\n\n") == ["Content-Length=abc"])
        // Leading blanks of a value go, trailing ones stay; a name keeps everything before its colon.
        #expect(
            Self.fields("GET / HTTP/1.1\r\nContent-Length: \t5 \r\nX :y\r\n\r\n") == [
                "Content-Length=5 ", "X =y",
            ])
        // A line that starts with a blank continues the previous value, joined without a separator.
        #expect(
            Self.fields("GET / HTTP/1.1\r\nContent-Length: 1\r\n  2\r\n\tx\r\n\r\n") == ["Content-Length=12x"]
        )
        // Each line is a C string to MHD: it ends at its first NUL.
        #expect(Self.fields("GET / HTTP/1.1\r\nContent-Length: 5\u{0}abc\r\n\r\n") == ["Content-Length=5"])
        #expect(Self.fields("GET / HTTP/1.1\r\nHost: a\r\n\u{0}junk\r\n") == ["Host=a"])
        #expect(Self.fields("GET / HTTP/1.1\r\nno colon here\r\n") == ["malformed"])
        // A lone CR inside a line is part of it.
        #expect(Self.fields("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n") == ["A=b\rc"])
    }
}
