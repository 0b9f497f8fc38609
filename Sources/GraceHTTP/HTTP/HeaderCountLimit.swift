/// How many fields a first request's head may carry, for the head gate: libmicrohttpd 0.9.75 keeps
/// the head in a connection's 32 KiB memory pool and, beside it, one record of about 64 bytes
/// (`struct MHD_HTTP_Req_Header`, rounded up in the pool) for every header line, every query
/// argument and every cookie. A head well under 32 KiB made of many small fields (1,000 headers of
/// a few bytes, 500 query arguments) runs the pool dry: MHD then answers its own HTML 431, or,
/// with too little left to build even that, closes the connection without a word. Measured on
/// 0.9.75: the head's bytes plus 64 per field fit up to about 32,600; the gate answers a head past
/// `budget` itself, with one problem+json 431, so what it hands over always fits.
enum HeaderCountLimit {
    /// What one field costs in MHD's pool, in bytes.
    static let bytesPerField = 64
    /// The head's bytes plus `bytesPerField` per field must stay within this: 1 KiB below MHD's
    /// connection memory, for its own bookkeeping.
    static let budget = HeadGate.headLimit - 1024

    /// The 431 for a complete head (`peeked` starts with it) that MHD could not hold, or nil.
    static func problem(
        _ peeked: ArraySlice<UInt8>, requestLine: ArraySlice<UInt8>, headers: HTTPHeaders
    ) -> HTTPResponse? {
        let fields = headers.count + queryArguments(requestLine) + cookies(headers)
        let cost = headLength(peeked) + fields * bytesPerField
        guard cost > budget else { return nil }
        return .problem(
            status: 431, slug: "request-head-too-large", title: "Request Header Fields Too Large",
            detail:
                "The request carries \(fields) header fields, query arguments and cookies; counting "
                + "\(bytesPerField) bytes for each beside the head itself, it needs \(cost) bytes of the "
                + "\(budget) graced keeps for a request's head.",
            resolution:
                "Send fewer headers, query arguments or cookies (a bearer token and a few fields are all graced needs).",
            extensions: ["limit": budget], headers: [("Connection", "close")])
    }

    /// MHD splits the target's query at every `&` and keeps each piece, empty ones included.
    static func queryArguments(_ requestLine: ArraySlice<UInt8>) -> Int {
        guard let question = requestLine.firstIndex(of: UInt8(ascii: "?")) else { return 0 }
        let query = requestLine[(question + 1)...].prefix { $0 != UInt8(ascii: " ") }
        return query.count { $0 == UInt8(ascii: "&") } + 1
    }

    /// MHD parses every `Cookie` header into its pairs, each a field of its own.
    static func cookies(_ headers: HTTPHeaders) -> Int {
        headers.values(for: "Cookie").reduce(0) { $0 + $1.utf8.count { $0 == UInt8(ascii: ";") } + 1 }
    }

    /// Bytes up to and including the blank line that ends the head (lines end at LF, as MHD reads
    /// them; blank lines before the request line are skipped); all of `peeked` if none does.
    static func headLength(_ peeked: ArraySlice<UInt8>) -> Int {
        var position = peeked.startIndex
        var sawRequestLine = false
        while let feed = peeked[position...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = peeked[position..<feed]
            let blank = line.isEmpty || line.elementsEqual([UInt8(ascii: "\r")])
            position = feed + 1
            if blank && sawRequestLine { return position - peeked.startIndex }
            if !blank { sawRequestLine = true }
        }
        return peeked.count
    }
}
