/// The answers the head gate gives, as problem+json, to a first request that libmicrohttpd would
/// otherwise answer itself with a bare HTML page: a request line or header line it cannot parse, an
/// HTTP version other than 1.x, a head too large for a connection's memory. Later requests on a
/// kept-alive connection, and TLS connections, still get libmicrohttpd's own answers.
package enum MalformedHead {
    /// The request line's problem, if any: `METHOD SP TARGET SP HTTP/1.x`, as MHD accepts it.
    static func requestLineProblem(_ line: ArraySlice<UInt8>) -> HTTPResponse? {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return malformed("The request line is not `METHOD TARGET HTTP/1.1`.")
        }
        let version = Array(parts[2])
        guard version.count == 8, version.starts(with: Array("HTTP/1.".utf8)),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(version[7])
        else {
            return .problem(
                status: 505, slug: "http-version-not-supported", title: "HTTP Version Not Supported",
                detail: "graced speaks HTTP/1.0 and HTTP/1.1 only.",
                resolution: "Send the request as HTTP/1.1.", headers: [("Connection", "close")])
        }
        return nil
    }

    static func malformed(_ detail: String) -> HTTPResponse {
        .problem(
            status: 400, slug: "malformed-request", title: "Malformed request", detail: detail,
            resolution:
                "Send an HTTP/1.1 request: a request line, header lines `Name: value`, an empty line.",
            headers: [("Connection", "close")])
    }

    static func tooLarge(limit: Int) -> HTTPResponse {
        .problem(
            status: 431, slug: "request-head-too-large", title: "Request Header Fields Too Large",
            detail: "The request line and headers exceed \(limit) bytes.",
            resolution:
                "Send fewer or shorter headers (a bearer token and a few fields are all graced needs).",
            extensions: ["limit": limit], headers: [("Connection", "close")])
    }

    /// The reason phrase for the status lines the gate writes itself.
    static func reason(_ status: Int) -> String {
        switch status {
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Bad Request"
        }
    }
}
