import Dispatch
import GraceTestSupport
import Synchronization

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// A deliberately tiny HTTP/1.1 client over a blocking socket, so tests control every byte
/// (pauses between body pieces, malformed requests, early disconnects).
///
/// It blocks, so tests call it through `offPool`: a blocking call on Swift's cooperative pool
/// could starve the tasks that produce the server's deferred responses.
struct RawHTTPClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let port: UInt16
    /// Connect to this Unix socket instead of 127.0.0.1:port.
    var unixPath: String?
    /// Only a guard against a server that never answers: a deferred answer comes from a task on
    /// the cooperative pool, which CPU-bound tests running beside it can keep busy for seconds.
    var receiveTimeoutSeconds = 60
    /// The IPv4 address (host order) to connect from, e.g. 0x7F00_0002 for 127.0.0.2; nil: the kernel's choice.
    var sourceAddress: UInt32?

    init(port: UInt16) {
        self.port = port
    }

    init(unixPath: String) {
        port = 0
        self.unixPath = unixPath
    }

    /// Builds a request with `Connection: close`, so the response ends at EOF.
    static func requestBytes(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers where !value.isEmpty {
            head += "\(name): \(value)\r\n"
        }
        // A body is JSON unless the test says otherwise (an empty value leaves the header out).
        let chunked = headers.contains { $0.0.lowercased() == "transfer-encoding" }
        if body != nil || chunked, !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            head += "Content-Type: application/json\r\n"
        }
        if let body, !headers.contains(where: { $0.0.lowercased() == "transfer-encoding" }) {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws -> Response {
        try exchange([Self.requestBytes(method, target, headers: headers, body: body)])
    }

    /// Sends the pieces with `pauseMicroseconds` between them, then reads to EOF and parses.
    func exchange(_ pieces: [[UInt8]], pauseMicroseconds: UInt32 = 0) throws -> Response {
        try Self.parse(exchangeRaw(pieces, pauseMicroseconds: pauseMicroseconds))
    }

    func exchangeRaw(_ pieces: [[UInt8]], pauseMicroseconds: UInt32 = 0) throws -> [UInt8] {
        let fd = try connectSocket()
        defer { close(fd) }
        for (index, piece) in pieces.enumerated() {
            if index > 0 && pauseMicroseconds > 0 {
                usleep(pauseMicroseconds)
            }
            try sendAll(fd, piece)
        }
        return try receiveAll(fd)
    }

    /// Sends bytes and hangs up without reading, like a client that gives up.
    func sendAndHangUp(_ bytes: [UInt8]) throws {
        let fd = try connectSocket()
        defer { close(fd) }
        try sendAll(fd, bytes)
    }

    func connectSocket() throws -> Int32 {
        let fd = socket(unixPath == nil ? AF_INET : AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let unixPath {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(unixPath.utf8)) }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard result == 0 else {
                let code = errno
                close(fd)
                throw Failure(description: "connect: errno \(code)")
            }
            return fd
        }
        if let sourceAddress {
            // Any address in 127/8 is this host's: a local user can pick one per connection.
            var source = sockaddr_in()
            source.sin_family = sa_family_t(AF_INET)
            source.sin_addr.s_addr = sourceAddress.bigEndian
            let bound = withUnsafePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                let code = errno
                close(fd)
                throw Failure(description: "bind: errno \(code)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw Failure(description: "connect: errno \(errno)")
        }
        return fd
    }

    func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw Failure(description: "send: errno \(errno)") }
            offset += sent
        }
    }

    func receiveAll(_ fd: Int32) throws -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return received }
            if count < 0 {
                // A reset after a complete response still counts as an answer.
                if errno == ECONNRESET && !received.isEmpty { return received }
                throw Failure(description: "recv: errno \(errno) after \(received.count) bytes")
            }
            received += buffer[..<count]
        }
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator })
        else { throw Failure(description: "no header end in \(bytes.count) bytes") }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw Failure(description: "bad status line \(lines[0])")
        }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (
                String(line[..<colon]),
                String(line[line.index(after: colon)...].drop { $0 == " " })
            )
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }
        ),
            body.count > length
        {
            body = Array(body[..<length])
        }
        return Response(status: status, headers: headers, body: body)
    }
}

extension String {
    /// FoundationEssentials has no `components(separatedBy:)`; the tests need only this.
    fileprivate func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

/// Blocking teardowns handed over by `deinit`s that run on Swift's cooperative pool (a test's last
/// reference to a service goes away there): each runs on a thread of its own, and the test process
/// waits for all of them at exit, so nothing is left half stopped.
final class BlockingTeardowns: Sendable {
    static let shared = BlockingTeardowns()

    private let pending = Mutex(0)
    private let finished = DispatchSemaphore(value: 0)

    private init() {
        atexit { BlockingTeardowns.shared.waitForAll() }
    }

    func run(_ work: @escaping @Sendable () -> Void) {
        pending.withLock { $0 += 1 }
        startThread { [self] in
            work()
            pending.withLock { $0 -= 1 }
            finished.signal()
        }
    }

    /// Blocks until every teardown handed over so far has ended (a minute at most: a hung one is
    /// reported, not waited for forever).
    private func waitForAll() {
        while pending.withLock({ $0 }) > 0 {
            if finished.wait(timeout: .now() + .seconds(60)) == .timedOut {
                print("BlockingTeardowns: \(pending.withLock { $0 }) teardown(s) still running after 60 s")
                return
            }
        }
    }
}

extension HTTPServer {
    /// `start()` binds sockets and starts MHD's threads; `stop()` waits for requests in flight and
    /// joins those threads: both block, so tests call them here, off the cooperative pool.
    func startOffPool() async throws {
        try await offPool { try self.start() }
    }

    func stopOffPool() async {
        await offPool { self.stop() }
    }

    /// Starts the server, runs `body`, and stops the server however `body` ends.
    func serving<T>(_ body: () async throws -> T) async throws -> T {
        try await startOffPool()
        do {
            let result = try await body()
            await stopOffPool()
            return result
        } catch {
            await stopOffPool()
            throw error
        }
    }
}
