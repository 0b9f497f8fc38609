/// How long the request's body is, read one way only (RFC 9112 §6): at most one `Content-Length`
/// of plain digits, or `Transfer-Encoding: chunked` alone. Anything else could be read differently
/// by a proxy in front of graced (request smuggling), so it is refused.
package enum RequestFraming: Equatable {
    case none
    case length(UInt64)
    case chunked

    enum Refusal: Error, Equatable {
        /// 400 (or 413 for an overflowing length) that graced sends itself.
        case refused(status: Int, detail: String)
        /// libmicrohttpd 0.9.75 answers this request itself, without calling the handler, and
        /// sends its status line twice; `HeadGate` answers a connection's first such request with
        /// this problem before MHD sees it.
        case answeredByMHD(status: Int, detail: String)
    }

    static func read(_ headers: HTTPHeaders) -> Result<RequestFraming, Refusal> {
        let lengths = headers.values(for: "Content-Length")
        let encodings = headers.values(for: "Transfer-Encoding")
        if !encodings.isEmpty {
            // MHD itself takes any Transfer-Encoding as "length unknown" and ignores Content-Length.
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                return .failure(
                    .refused(status: 400, detail: "Transfer-Encoding must be exactly `chunked` when present.")
                )
            }
            guard lengths.isEmpty else {
                return .failure(
                    .refused(
                        status: 400, detail: "The request has both Content-Length and Transfer-Encoding."))
            }
            return .success(.chunked)
        }
        guard let first = lengths.first else { return .success(.none) }
        // MHD parses the first Content-Length as decimal digits to the end; failing that, it has
        // queued 400 (or 413 when the digits overflow 64 bits) before our handler runs.
        let digits = first.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && !first.isEmpty
        guard digits, let value = UInt64(first) else {
            let overflow = digits
            return .failure(
                .answeredByMHD(
                    status: overflow ? 413 : 400,
                    detail: overflow
                        ? "Content-Length is too large."
                        : "Content-Length '\(String(first.prefix(40)))' is not a whole number of bytes."))
        }
        guard lengths.count == 1 else {
            return .failure(.refused(status: 400, detail: "The request has more than one Content-Length."))
        }
        return .success(.length(value))
    }

    static func problem(status: Int, detail: String) -> HTTPResponse {
        if status == 413 {
            // `limit` is null, not left out: every content-too-large problem has it, and this one is
            // answered while the framing is read, before the body limit is consulted.
            return .problem(
                status: 413, slug: "content-too-large", title: "Content Too Large", detail: detail,
                resolution: "Send a Content-Length that states the body's real size in bytes.",
                extensions: ["limit": Int?.none])
        }
        return .problem(
            status: 400, slug: "bad-framing", title: "Ambiguous request framing", detail: detail,
            resolution:
                "Send one Content-Length of plain decimal digits, or `Transfer-Encoding: chunked` without Content-Length.",
            headers: [("Connection", "close")])
    }
}
