import FoundationEssentials
import Testing

@testable import GraceAPI

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
}
