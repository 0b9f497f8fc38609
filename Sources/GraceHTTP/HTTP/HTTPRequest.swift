/// One complete HTTP request as handlers see it.
public struct HTTPRequest: Sendable {
    /// The method token exactly as sent (`GET`, `POST`, ...).
    public var method: String
    /// The request target exactly as sent, percent-escapes and query included.
    public var rawTarget: String
    /// The raw target up to `?`, still percent-encoded, so `%2F` stays inside its segment.
    public var path: String
    /// Query parameters, percent-decoded with `+` as a space. A name sent twice never gets here: the
    /// server refuses the request before routing it (`repeatedQueryName`), so each is read one way.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Who sent it, as the edge identified them before routing.
    public var caller: Caller
    /// The request's audit line, when its handler writes it with the change it makes (the
    /// service's `TransactionalAudit`).
    public var audit: (any HandlerWrittenAudit)?

    public init(
        method: String, rawTarget: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
        caller: Caller = Caller(name: "anonymous", role: nil, source: .none)
    ) {
        self.caller = caller
        self.method = method
        self.rawTarget = rawTarget
        let (path, queryString) = Self.split(rawTarget)
        self.path = String(path)
        self.query = Self.parseQuery(queryString)
        self.headers = headers
        self.body = body
    }

    /// Splits a target at the first `?` and drops any fragment (clients should not send one).
    static func split(_ target: String) -> (path: Substring, query: Substring) {
        let bytes = target.utf8
        if bytes.allSatisfy({ $0 < 0x80 }) {
            // ASCII (every valid target): one byte is one character, so a byte search finds the
            // same `#` and `?` as the character search below, without grapheme breaking.
            let end = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
            guard let mark = bytes[..<end].firstIndex(of: UInt8(ascii: "?")) else {
                return (target[..<end], "")
            }
            return (target[..<mark], target[bytes.index(after: mark)..<end])
        }
        let withoutFragment = target.prefix { $0 != "#" }
        guard let mark = withoutFragment.firstIndex(of: "?") else {
            return (withoutFragment, "")
        }
        return (withoutFragment[..<mark], withoutFragment[withoutFragment.index(after: mark)...])
    }

    /// The first parameter name (decoded) that the query sends more than once, if any: `?wait=1&wait=300`
    /// has no one meaning, and reading either value silently would be reading it two ways.
    static func repeatedQueryName(_ query: Substring) -> String? {
        var seen: Set<String> = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.prefix { $0 != "=" }
            let key = PercentDecoding.decode(name, plusAsSpace: true)
            if !seen.insert(key).inserted { return key }
        }
        return nil
    }

    static func parseQuery(_ query: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                name = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                name = pair
                value = ""
            }
            let key = PercentDecoding.decode(name, plusAsSpace: true)
            if result[key] == nil {
                result[key] = PercentDecoding.decode(value, plusAsSpace: true)
            }
        }
        return result
    }
}
