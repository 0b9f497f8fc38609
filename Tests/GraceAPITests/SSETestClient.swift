import GraceTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking client for one server-sent-events response over a raw socket: it sends the request,
/// then reads and de-chunks the body piece by piece, so a test can wait for events as they come.
/// Call it through `offPool`.
final class SSETestClient: @unchecked Sendable {
    struct Event: Equatable {
        var id: Int64?
        var type: String
        var data: String
    }

    let fd: Int32
    private(set) var status = 0
    private(set) var headers: [(String, String)] = []
    /// The de-chunked body so far.
    private(set) var body: [UInt8] = []
    /// Whether the body ended properly (the last chunk) or the connection closed.
    private(set) var ended = false
    private(set) var cleanEnd = false
    private var raw: [UInt8] = []
    private var headDone = false

    init(port: UInt16, target: String, headers: [(String, String)] = [], receiveTimeoutSeconds: Int = 10)
        throws
    {
        var client = RawHTTPClient(port: port)
        client.receiveTimeoutSeconds = receiveTimeoutSeconds
        fd = try client.connectSocket()
        var head = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try client.sendAll(fd, Array(head.utf8))
    }

    private var open = true

    deinit { hangUp() }

    /// Closes the socket, like a client that goes away mid-stream.
    func hangUp() {
        if open { close(fd) }
        open = false
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// Every complete event so far (comments and `retry:` left out).
    var events: [Event] {
        text.split(separator: "\n\n", omittingEmptySubsequences: true).compactMap { block in
            var event = Event(id: nil, type: "", data: "")
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { event.id = Int64(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event.type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { event.data = String(line.dropFirst(6)) }
            }
            return event.type.isEmpty ? nil : event
        }
    }

    /// Reads until `done` holds for what was received, the stream ends, or the receive timeout
    /// passes (then throws).
    func read(until done: (SSETestClient) -> Bool) throws {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while !done(self) && !ended {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 { throw RawHTTPClient.Failure(description: "recv: errno \(errno) after \(text)") }
            if count == 0 {
                ended = true
                break
            }
            raw += buffer[..<count]
            parse()
        }
    }

    /// Reads until the body holds `count` events.
    func readEvents(_ count: Int) throws -> [Event] {
        try read { $0.events.count >= count }
        return events
    }

    private func parse() {
        if !headDone {
            guard let end = find([13, 10, 13, 10], in: raw[...]) else { return }
            let lines = String(decoding: raw[..<end], as: UTF8.self).split(separator: "\r\n")
            status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            headers = lines.dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
            }
            raw.removeFirst(end + 4)
            headDone = true
            if header("Transfer-Encoding")?.lowercased() != "chunked" {
                // A complete, non-streaming answer (a problem): its body is what follows.
                body = raw
                raw = []
                ended = header("Content-Length").flatMap(Int.init) == body.count
                return
            }
        }
        guard header("Transfer-Encoding")?.lowercased() == "chunked" else {
            body += raw
            raw = []
            return
        }
        while let lineEnd = find([13, 10], in: raw[...]) {
            let sizeText = String(decoding: raw[..<lineEnd], as: UTF8.self).prefix { $0 != ";" }
            guard let size = Int(sizeText, radix: 16) else { return }
            if size == 0 {
                ended = true
                cleanEnd = true
                return
            }
            guard raw.count >= lineEnd + 2 + size + 2 else { return }
            body += raw[(lineEnd + 2)..<(lineEnd + 2 + size)]
            raw.removeFirst(lineEnd + 2 + size + 2)
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    private func find(_ pattern: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        for start in bytes.startIndex...(bytes.endIndex - pattern.count)
        where bytes[start..<start + pattern.count].elementsEqual(pattern) {
            return start
        }
        return nil
    }
}
