import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The smallest HTTP/1.1 client that does the job: one request per connection, read to EOF.
/// Blocking on purpose: the benchmark measures the service, not a client's event loop.
struct BlockingHTTPClient {
    let port: UInt16

    struct Response {
        var status: Int
        var body: [UInt8]
    }

    func request(_ method: String, _ path: String, body: String = "") -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket failed")
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(connected == 0, "connect failed: \(errno)")
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let request =
            "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            precondition(count > 0, "send failed")
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        let separator = Array("\r\n\r\n".utf8)
        var headerEnd = received.count
        for index in 0..<max(0, received.count - 3) where Array(received[index..<index + 4]) == separator {
            headerEnd = index
            break
        }
        let statusLine = String(decoding: received.prefix(while: { $0 != 13 }), as: UTF8.self)
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Response(status: status, body: Array(received.dropFirst(min(received.count, headerEnd + 4))))
    }

    struct JobSummary: Decodable {
        var id: String
        var state: String
        var phase: String
    }

    func job(_ path: String, method: String = "GET", body: String = "") -> JobSummary? {
        let response = request(method, path, body: body)
        return try? JSONDecoder().decode(JobSummary.self, from: Data(response.body))
    }
}
