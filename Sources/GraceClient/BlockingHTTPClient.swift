import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The smallest HTTP/1.1 client that does the job: one request per connection, read to EOF.
/// Blocking on purpose: gracectl waits for one answer at a time, and the benchmark measures the
/// service, not a client's event loop.
public struct BlockingHTTPClient: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public let server: GraceServer
    /// Private, and left out of `description` and the mirror: whatever prints a client (a log line, a
    /// debugger, `dump`) must not print the token.
    private let token: String?
    /// The CAs and client certificate for an `https://` server.
    public let tls: TLSOptions

    public init(server: GraceServer, token: String? = nil, tls: TLSOptions = TLSOptions()) {
        self.server = server
        self.token = token
        self.tls = tls
    }

    public init(host: String = "127.0.0.1", port: UInt16, token: String? = nil) {
        self.init(server: .tcp(host: host, port: port), token: token)
    }

    /// Whether requests carry `Authorization: Bearer`.
    public var hasToken: Bool { token != nil }

    public var description: String {
        "BlockingHTTPClient(\(server)" + (hasToken ? ", token: <redacted>)" : ")")
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["server": server, "hasToken": hasToken]) }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(status: Int, headers: [(String, String)], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        public var text: String { String(decoding: body, as: UTF8.self) }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        /// `Retry-After` when it counts seconds; nil when absent or an HTTP date.
        public var retryAfterSeconds: Int? {
            header("Retry-After").flatMap { Int($0.trimmingSpaces) }.flatMap { $0 >= 0 ? $0 : nil }
        }

        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(type, from: Data(body))
        }
    }

    public struct ConnectionError: Error, CustomStringConvertible {
        public let description: String
        /// The errno of the system call that failed; nil when none did (a malformed answer, say).
        public let code: Int32?
    }

    /// RFC 9110 §8.6: a request whose method gives content a meaning says `Content-Length: 0` when it
    /// has none; other methods send no length at all.
    static let methodsWithContent: Set<String> = ["POST", "PUT", "PATCH"]

    /// Sends one request and reads the whole answer. A `body` goes out as JSON; without one the request
    /// has no `Content-Type`. `headers` replace the client's own of the same name.
    public func request(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []
    ) throws(ConnectionError) -> Response {
        let bytes = Array((body ?? "").utf8)
        let message =
            try Array(head(method, path, body: body == nil ? nil : bytes.count, headers).utf8) + bytes
        let connection = try openConnection()
        // A server may answer (a 401, say) and close before reading everything; the answer still counts.
        let sendError = connection.sendAll(message)
        var received: [UInt8] = []
        do {
            received = try receiveAll(connection)
        } catch {
            guard sendError != nil else { throw error }
        }
        if received.isEmpty, let sendError {
            throw ConnectionError(
                description: "\(server) closed the connection while gracectl sent the request "
                    + "(\(sendError.reason))",
                code: sendError.code)
        }
        return try parse(received)
    }

    /// The request line and headers; `body` is the body's length in bytes, nil when there is none.
    func head(
        _ method: String, _ path: String, body: Int?, _ extra: [(String, String)]
    ) throws(ConnectionError) -> String {
        guard !method.isEmpty, method.utf8.allSatisfy({ Self.isTokenByte($0) }) else {
            throw ConnectionError(description: "\"\(method)\" is not an HTTP method", code: nil)
        }
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw ConnectionError(description: "\"\(path)\" is not a request target", code: nil)
        }
        var fields = [("Host", server.hostHeader), ("Connection", "close")]
        if let token {
            // Said without the token itself: the caller may print this error.
            guard Self.isToken68(token) else {
                throw ConnectionError(
                    description: "the bearer token holds characters no token has "
                        + "(RFC 6750 allows letters, digits, -._~+/ and a trailing =)",
                    code: nil)
            }
            fields.append(("Authorization", "Bearer " + token))
        }
        if let body {
            fields += [("Content-Type", "application/json"), ("Content-Length", "\(body)")]
        } else if Self.methodsWithContent.contains(method) {
            fields.append(("Content-Length", "0"))
        }
        let replaced = Set(extra.map { $0.0.lowercased() })
        fields = fields.filter { !replaced.contains($0.0.lowercased()) } + extra
        var head = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in fields {
            guard !name.isEmpty, name.utf8.allSatisfy({ Self.isTokenByte($0) }),
                !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 })
            else {
                throw ConnectionError(description: "\"\(name)\" is not a header gracectl can send", code: nil)
            }
            head += "\(name): \(value)\r\n"
        }
        return head + "\r\n"
    }

    /// A connection ready for a request: over `https://`, with the server's certificate verified.
    func openConnection() throws(ConnectionError) -> ClientConnection {
        switch server {
        case .unix(let path):
            return ClientConnection(fd: try connectUnix(path), tls: nil)
        case .tcp(let host, let port):
            return ClientConnection(fd: try connectTCP(host, port), tls: nil)
        case .https(let host, let port):
            let fd = try connectByName(host, port)
            do {
                return ClientConnection(fd: fd, tls: try TLSSession(fd: fd, host: host, options: tls))
            } catch {
                close(fd)
                throw ConnectionError(description: "\(server): \(error.description)", code: error.code)
            }
        }
    }

    /// An IP literal (or localhost) directly; a DNS name through the resolver, each of its addresses
    /// in turn.
    private func connectByName(_ host: String, _ port: UInt16) throws(ConnectionError) -> Int32 {
        if host.lowercased() == "localhost" || GraceServer.isAddress(host, family: AF_INET)
            || GraceServer.isAddress(host, family: AF_INET6)
        {
            return try connectTCP(host, port)
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let looked = getaddrinfo(host, String(port), &hints, &found)
        guard looked == 0, let found else {
            throw ConnectionError(
                description: "cannot find \(host): \(String(cString: gai_strerror(looked)))", code: nil)
        }
        defer { freeaddrinfo(found) }
        var lastError: ConnectionError?
        var entry: UnsafeMutablePointer<addrinfo>? = found
        while let current = entry {
            entry = current.pointee.ai_next
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            guard
                getnameinfo(
                    current.pointee.ai_addr, current.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0,
                    NI_NUMERICHOST) == 0
            else { continue }
            do {
                return try connectTCP(
                    String(decoding: text.prefix { $0 != 0 }.map(UInt8.init), as: UTF8.self), port)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? ConnectionError(description: "cannot find an address for \(host)", code: nil)
    }

    private func connectUnix(_ path: String) throws(ConnectionError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= GraceServer.maximumSocketPathBytes else {
            throw ConnectionError(description: "\(server): no Unix socket can have this path", code: nil)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let fd = try openSocket(AF_UNIX)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            let why =
                switch code {
                case ENOENT: "is graced running? (no socket at \(path))"
                case ECONNREFUSED: "is graced running? (nothing accepts connections on \(path))"
                case EACCES, EPERM:
                    "your user cannot open \(path): ask for membership of its group "
                        + "(\(Self.groupName(of: path).map { "\($0);" } ?? "usually graced;") "
                        + "it applies from your next login) or use a token over TCP"
                default: Self.errorText(code)
                }
            throw ConnectionError(description: "cannot connect to graced at \(server): \(why)", code: code)
        }
        return fd
    }

    private func connectTCP(_ host: String, _ port: UInt16) throws(ConnectionError) -> Int32 {
        let literal = host.lowercased() == "localhost" ? "127.0.0.1" : host
        let family = literal.contains(":") ? AF_INET6 : AF_INET
        var address = sockaddr_in()
        var address6 = sockaddr_in6()
        let parsed =
            family == AF_INET
            ? inet_pton(AF_INET, literal, &address.sin_addr)
            : inet_pton(AF_INET6, literal, &address6.sin6_addr)
        guard parsed == 1 else {
            throw ConnectionError(description: "\(server): \(host) is not an IP address", code: nil)
        }
        let fd = try openSocket(family)
        let connected: Int32
        if family == AF_INET {
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            address6.sin6_family = sa_family_t(AF_INET6)
            address6.sin6_port = port.bigEndian
            connected = withUnsafePointer(to: &address6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            let why =
                code == ECONNREFUSED
                ? "is graced running? (nothing listens on \(server.hostHeader))" : Self.errorText(code)
            throw ConnectionError(description: "cannot connect to graced at \(server): \(why)", code: code)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    private func openSocket(_ family: Int32) throws(ConnectionError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let code = errno
            throw ConnectionError(description: "socket: \(Self.errorText(code))", code: code)
        }
        return fd
    }

    private func receiveAll(_ connection: ClientConnection) throws(ConnectionError) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = try connection.receive(&buffer, from: server, haveSome: !received.isEmpty)
            if count == 0 { return received }
            received += buffer[0..<count]
        }
    }

    func parse(_ received: [UInt8]) throws(ConnectionError) -> Response {
        guard let headEnd = Self.find([13, 10, 13, 10], in: received[...]) else {
            throw ConnectionError(
                description: received.isEmpty
                    ? "\(server) closed the connection without an answer"
                    : "\(server) sent no complete HTTP answer (\(received.count) bytes)",
                code: nil)
        }
        let head = String(decoding: received[..<headEnd], as: UTF8.self).split(separator: "\r\n")
        let statusLine = head.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1])
        else {
            throw ConnectionError(description: "\(server) answered something other than HTTP/1.1", code: nil)
        }
        let headers = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
        }
        var response = Response(status: status, headers: headers, body: Array(received[(headEnd + 4)...]))
        if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            guard let body = Self.dechunk(response.body[...]) else {
                throw ConnectionError(description: "\(server) sent a malformed chunked body", code: nil)
            }
            response.body = body
        } else if let length = response.header("Content-Length").flatMap({ Int($0) }),
            length < response.body.count
        {
            response.body.removeSubrange(length...)
        }
        return response
    }

    /// RFC 9112 §7.1; chunk extensions and trailers are read past.
    static func dechunk(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var body: [UInt8] = []
        var index = bytes.startIndex
        while true {
            guard let lineEnd = find([13, 10], in: bytes[index...]) else { return nil }
            let sizeField = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
            guard let size = Int((sizeField.split(separator: ";").first ?? "").trimmingSpaces, radix: 16),
                size >= 0
            else { return nil }
            index = lineEnd + 2
            if size == 0 { return body }
            guard bytes.endIndex - index >= size + 2 else { return nil }
            body += bytes[index..<index + size]
            index += size + 2
        }
    }

    static func find(_ pattern: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        return (bytes.startIndex...(bytes.endIndex - pattern.count)).first {
            bytes[$0..<$0 + pattern.count].elementsEqual(pattern)
        }
    }

    /// The `tchar` of RFC 9110 §5.6.2, which header names and methods are made of.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    /// RFC 6750's `b64token`: what may follow `Bearer `.
    public static func isToken68(_ token: String) -> Bool {
        let bytes = Array(token.utf8)
        let padding = bytes.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        let body = bytes.dropLast(padding)
        return !body.isEmpty
            && body.allSatisfy {
                switch $0 {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    true
                default: Array("-._~+/".utf8).contains($0)
                }
            }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The name of the group owning `path`, for the hint after EACCES; nil when even stat is refused.
    static func groupName(of path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        var entry = group()
        var found: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { storage in
            guard getgrgid_r(status.st_gid, &entry, storage.baseAddress, storage.count, &found) == 0,
                let found
            else { return nil }
            return String(cString: found.pointee.gr_name)
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
