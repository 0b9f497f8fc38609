// `grace-bench http-load`: a closed-loop HTTP/1.1 load generator in the manner of wrk (keep-alive
// connections spread over threads, each with its own poll(2) loop, one request in flight per
// connection), which also speaks over a Unix socket, where wrk cannot. bench/http-vs-nginx.sh and
// bench/soak.sh use it for their Unix-socket rows; over TCP it is checked against wrk.
//
//   grace-bench http-load TARGET [--connections 64] [--threads 2] [--duration SECONDS | --requests N]
//       [--header 'Name: value']... [--mix FILE] [PATH]
//
// TARGET is unix:/path/to.sock or 127.x.y.z:PORT (loopback only: this is a benchmark's client).
// Without --mix every request is `GET PATH` (default /) with the --header lines. A mix file has one
// request a line, `METHOD PATH | Name: value | Name: value`, cycled in order by each thread (lines
// starting with # are skipped); a POST, PUT or DELETE carries `{}` as a JSON body. A request with
// `Connection: close`, or an answer with it, makes its connection reconnect.
//
// Prints one line of key=value: requests, seconds, rps, p50/p90/p99/max latency in ms (from the
// request's write to its answer's last byte), errors (connects, resets, early closes, unparsable
// answers) and the count of each status.

#if canImport(Glibc)
    import Glibc
#endif

enum HTTPLoad {
    enum Target {
        case unix(String)
        case tcp(address: in_addr, port: UInt16)
    }

    struct Options {
        var target: Target
        var connections = 64
        var threads = 2
        var duration: Double?
        var requests: Int?
        var requestsBytes: [[UInt8]] = []
        var closes: [Bool] = []
    }

    static func usage(_ message: String) -> Never {
        let text =
            "grace-bench http-load: \(message)\n"
            + "usage: grace-bench http-load unix:PATH|127.0.0.1:PORT [--connections N] [--threads N] "
            + "[--duration S | --requests N] [--header 'Name: value']... [--mix FILE] [PATH]\n"
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
        exit(2)
    }

    static func parse(_ arguments: [String]) -> Options {
        guard let first = arguments.first else { usage("no target") }
        let target: Target
        if first.hasPrefix("unix:") {
            target = .unix(String(first.dropFirst(5)))
        } else {
            let parts = first.split(separator: ":")
            var address = in_addr()
            guard parts.count == 2, let port = UInt16(parts[1]),
                inet_pton(AF_INET, String(parts[0]), &address) == 1
            else { usage("target '\(first)' is neither unix:PATH nor IPv4:PORT") }
            // 127.0.0.0/8 only: nothing but loopback may be loaded from this machine.
            guard UInt32(bigEndian: address.s_addr) >> 24 == 127 else {
                usage("target \(first) is not a loopback address")
            }
            target = .tcp(address: address, port: port)
        }
        var options = Options(target: target)
        var headers: [String] = []
        var mixFile: String?
        var path = "/"
        var index = 1
        func value() -> String {
            index += 1
            guard index < arguments.count else { usage("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--connections": options.connections = Int(value()) ?? 0
            case "--threads": options.threads = Int(value()) ?? 0
            case "--duration": options.duration = Double(value())
            case "--requests": options.requests = Int(value())
            case "--header": headers.append(value())
            case "--mix": mixFile = value()
            case let other where other.hasPrefix("/"): path = other
            case let other: usage("unknown argument \(other)")
            }
            index += 1
        }
        guard options.connections > 0, options.threads > 0 else {
            usage("connections and threads must be > 0")
        }
        options.threads = min(options.threads, options.connections)
        guard (options.duration != nil) != (options.requests != nil) else {
            usage("give exactly one of --duration and --requests")
        }
        let host: String
        switch target {
        case .unix: host = "localhost"
        case .tcp: host = first
        }
        var lines: [String] = []
        if let mixFile {
            guard let file = fopen(mixFile, "r") else { usage("cannot read \(mixFile)") }
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            while getline(&line, &capacity, file) > 0 {
                let text = String(cString: line!).trimmingSpaces()
                if !text.isEmpty, !text.hasPrefix("#") { lines.append(text) }
            }
            free(line)
            guard !lines.isEmpty else { usage("\(mixFile) holds no request") }
        } else {
            lines = [(["GET \(path)"] + headers).joined(separator: " | ")]
        }
        for line in lines {
            let fields = line.split(separator: "|").map { String($0).trimmingSpaces() }
            let start = fields[0].split(separator: " ")
            guard start.count == 2 else { usage("bad request line '\(line)'") }
            let method = String(start[0])
            var text = "\(method) \(start[1]) HTTP/1.1\r\nHost: \(host)\r\n"
            var close = false
            for header in fields.dropFirst() {
                text += header + "\r\n"
                if header.lowercased().replacingSpaces() == "connection:close" { close = true }
            }
            if method != "GET" && method != "HEAD" {
                text += "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            } else {
                text += "\r\n"
            }
            options.requestsBytes.append(Array(text.utf8))
            options.closes.append(close)
        }
        return options
    }

    /// One connection's state: the request being written, the answer being read.
    struct Connection {
        var fd: Int32 = -1
        var inFlight = false
        var startedNs: UInt64 = 0
        var request = 0
        var written = 0
        var closeAfter = false
        // The answer: its head (kept until parsed), then what is left of its body.
        var head: [UInt8] = []
        var headParsed = false
        var status = 0
        var bodyLeft = 0
        var chunked = false
        var untilClose = false
        var chunkBuffer: [UInt8] = []
    }

    final class Worker: @unchecked Sendable {
        let options: Options
        let connections: Int
        let budget: Int?
        let deadlineNs: UInt64?
        var latenciesUs: [UInt32] = []
        var statuses: [Int: Int] = [:]
        var errors = 0
        var completed = 0
        var issued = 0
        var next = 0
        var thread = pthread_t()

        init(options: Options, connections: Int, budget: Int?, deadlineNs: UInt64?) {
            self.options = options
            self.connections = connections
            self.budget = budget
            self.deadlineNs = deadlineNs
            latenciesUs.reserveCapacity(min(budget ?? 1_000_000, 4_000_000))
        }

        func mayIssue() -> Bool {
            if let budget, issued >= budget { return false }
            if let deadlineNs, HTTPLoad.nowNs() >= deadlineNs { return false }
            return true
        }

        func open() -> Int32 {
            switch options.target {
            case .unix(let path):
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                guard fd >= 0 else { return -1 }
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                let capacity = MemoryLayout.size(ofValue: address.sun_path)
                guard path.utf8.count < capacity else {
                    close(fd)
                    return -1
                }
                withUnsafeMutableBytes(of: &address.sun_path) { raw in
                    for (offset, byte) in path.utf8.enumerated() { raw[offset] = byte }
                    raw[path.utf8.count] = 0
                }
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                guard result == 0 else {
                    close(fd)
                    return -1
                }
                return nonBlocking(fd)
            case .tcp(let host, let port):
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard fd >= 0 else { return -1 }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr = host
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard result == 0 else {
                    close(fd)
                    return -1
                }
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return nonBlocking(fd)
            }
        }

        func nonBlocking(_ fd: Int32) -> Int32 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return fd
        }

        func run() {
            var table = [Connection](repeating: Connection(), count: connections)
            // One pollfd per slot, in the slot's order; a slot without a connection has fd -1.
            var polls = [pollfd](repeating: pollfd(fd: -1, events: 0, revents: 0), count: connections)
            let scratchSize = 256 * 1024
            let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: scratchSize)
            defer { scratch.deallocate() }

            func watch(_ index: Int, writable: Bool, add: Bool) {
                polls[index].fd = table[index].fd
                polls[index].events = Int16(writable ? POLLOUT : POLLIN)
            }
            func drop(_ index: Int) {
                if table[index].fd >= 0 { close(table[index].fd) }
                table[index] = Connection()
                polls[index].fd = -1
            }
            /// Opens the slot's connection if it has none and sends the next request.
            func send(_ index: Int) {
                guard mayIssue() else {
                    drop(index)
                    return
                }
                if table[index].fd < 0 {
                    var attempts = 0
                    var fd: Int32 = -1
                    while fd < 0 && attempts < 100 {
                        fd = open()
                        if fd < 0 {
                            HTTPLoad.debug("connect: errno \(errno)")
                            errors += 1
                            attempts += 1
                            usleep(10_000)
                            if !mayIssue() { return }
                        }
                    }
                    guard fd >= 0 else { return }
                    table[index].fd = fd
                    watch(index, writable: false, add: true)
                }
                let request = next % options.requestsBytes.count
                next += 1
                issued += 1
                table[index].request = request
                table[index].written = 0
                table[index].inFlight = true
                table[index].closeAfter = options.closes[request]
                table[index].head.removeAll(keepingCapacity: true)
                table[index].headParsed = false
                table[index].startedNs = HTTPLoad.nowNs()
                write(index)
            }
            func write(_ index: Int) {
                let bytes = options.requestsBytes[table[index].request]
                while table[index].written < bytes.count {
                    let result = bytes.withUnsafeBytes { raw in
                        Glibc.write(
                            table[index].fd, raw.baseAddress! + table[index].written,
                            bytes.count - table[index].written)
                    }
                    if result > 0 {
                        table[index].written += result
                    } else if result < 0 && errno == EAGAIN {
                        watch(index, writable: true, add: false)
                        return
                    } else {
                        fail(index, "write: errno \(errno)")
                        return
                    }
                }
                watch(index, writable: false, add: false)
            }
            func fail(_ index: Int, _ why: String) {
                HTTPLoad.debug("connection \(index): \(why)")
                errors += 1
                drop(index)
                send(index)
            }
            func complete(_ index: Int) {
                let elapsed = (HTTPLoad.nowNs() - table[index].startedNs) / 1000
                latenciesUs.append(UInt32(min(elapsed, UInt64(UInt32.max))))
                statuses[table[index].status, default: 0] += 1
                completed += 1
                let close = table[index].closeAfter
                table[index].inFlight = false
                if close { drop(index) }
                send(index)
            }
            /// Consumes `count` bytes of the chunked body; true when the last chunk has been read.
            func chunkedDone(_ index: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
                table[index].chunkBuffer.append(contentsOf: bytes)
                var buffer = table[index].chunkBuffer
                defer { table[index].chunkBuffer = buffer }
                while true {
                    if table[index].bodyLeft > 0 {
                        let take = min(table[index].bodyLeft, buffer.count)
                        buffer.removeFirst(take)
                        table[index].bodyLeft -= take
                        if table[index].bodyLeft > 0 { return false }
                    }
                    // A size line: hex digits, optional extensions, CRLF.
                    guard let lineEnd = HTTPLoad.find([13, 10], in: buffer[...]) else { return false }
                    var size = 0
                    for byte in buffer[..<lineEnd] {
                        guard let digit = HTTPLoad.hexValue(byte) else { break }
                        size = size * 16 + digit
                    }
                    if size == 0 {
                        // The last chunk; no trailers expected: wait for the closing CRLF.
                        guard buffer.count >= lineEnd + 4 else { return false }
                        buffer.removeAll()
                        return true
                    }
                    buffer.removeFirst(lineEnd + 2)
                    table[index].bodyLeft = size + 2  // the chunk and its CRLF
                }
            }
            func readable(_ index: Int) {
                while true {
                    let count = read(table[index].fd, scratch, scratchSize)
                    if count < 0 {
                        if errno == EAGAIN { return }
                        fail(index, "read: errno \(errno)")
                        return
                    }
                    if count == 0 {
                        if table[index].inFlight && table[index].headParsed && table[index].untilClose {
                            table[index].closeAfter = true
                            complete(index)
                        } else if table[index].inFlight {
                            fail(index, "closed by the server after \(table[index].head.count) bytes")
                        } else {
                            drop(index)
                        }
                        return
                    }
                    guard table[index].inFlight else {
                        fail(index, "bytes nobody asked for")
                        return
                    }
                    let bytes = UnsafeBufferPointer(start: scratch, count: count)
                    if !table[index].headParsed {
                        // The head is parsed where it lies: in this read when it came whole (the
                        // usual case), else in the bytes kept from earlier reads.
                        var rest: UnsafeBufferPointer<UInt8>
                        var kept: [UInt8] = []
                        if table[index].head.isEmpty, let end = HTTPLoad.headEnd(bytes) {
                            guard parseHead(index, UnsafeBufferPointer(rebasing: bytes[..<end])) else {
                                fail(index, "unparsable head")
                                return
                            }
                            rest = UnsafeBufferPointer(rebasing: bytes[(end + 4)...])
                        } else {
                            table[index].head.append(contentsOf: bytes)
                            kept = table[index].head
                            let found = kept.withUnsafeBufferPointer { HTTPLoad.headEnd($0) }
                            guard let end = found else {
                                if kept.count > 64 * 1024 { fail(index, "head over 64 KiB") }
                                continue
                            }
                            let parsed = kept.withUnsafeBufferPointer {
                                parseHead(index, UnsafeBufferPointer(rebasing: $0[..<end]))
                            }
                            guard parsed else {
                                fail(index, "unparsable head")
                                return
                            }
                            table[index].head.removeAll(keepingCapacity: true)
                            kept.removeFirst(end + 4)
                            rest = UnsafeBufferPointer(start: nil, count: 0)
                        }
                        let done: Bool? = kept.withUnsafeBufferPointer { keptBytes in
                            let body = keptBytes.isEmpty ? rest : keptBytes
                            if table[index].chunked { return chunkedDone(index, body) }
                            table[index].bodyLeft -= body.count
                            return nil
                        }
                        if done == true {
                            complete(index)
                            return
                        }
                        if table[index].chunked { continue }
                    } else if table[index].chunked {
                        if chunkedDone(index, bytes) == true {
                            complete(index)
                            return
                        }
                        continue
                    } else {
                        table[index].bodyLeft -= bytes.count
                    }
                    if table[index].untilClose { continue }
                    if table[index].bodyLeft < 0 {
                        fail(index, "more than Content-Length")
                        return
                    }
                    if table[index].bodyLeft == 0 {
                        complete(index)
                        return
                    }
                }
            }
            /// Reads the status, Content-Length, Transfer-Encoding and Connection from a head (without
            /// its final CRLF CRLF), byte by byte.
            func parseHead(_ index: Int, _ head: UnsafeBufferPointer<UInt8>) -> Bool {
                // "HTTP/1.x NNN"
                guard head.count >= 12, head[0] == 0x48, head[5] == 0x31, head[8] == 0x20,
                    let d0 = HTTPLoad.digit(head[9]), let d1 = HTTPLoad.digit(head[10]),
                    let d2 = HTTPLoad.digit(head[11])
                else { return false }
                let status = d0 * 100 + d1 * 10 + d2
                table[index].status = status
                table[index].headParsed = true
                table[index].chunked = false
                table[index].chunkBuffer.removeAll()
                table[index].untilClose = false
                var length: Int?
                var line = 0
                while line < head.count {
                    var next = line
                    while next + 1 < head.count && !(head[next] == 13 && head[next + 1] == 10) { next += 1 }
                    if next + 1 >= head.count { next = head.count }
                    let text = UnsafeBufferPointer(rebasing: head[line..<next])
                    if let value = HTTPLoad.headerValue(text, "content-length") {
                        var number = 0
                        for byte in value { if let d = HTTPLoad.digit(byte) { number = number * 10 + d } }
                        length = number
                    } else if let value = HTTPLoad.headerValue(text, "transfer-encoding") {
                        table[index].chunked = HTTPLoad.contains(value, "chunked")
                    } else if let value = HTTPLoad.headerValue(text, "connection") {
                        if HTTPLoad.contains(value, "close") { table[index].closeAfter = true }
                    }
                    line = next + 2
                }
                let request = options.requestsBytes[table[index].request]
                if status == 204 || status == 304 || (100..<200).contains(status)
                    || request.starts(with: "HEAD ".utf8)
                {
                    table[index].bodyLeft = 0
                } else if table[index].chunked {
                    table[index].bodyLeft = 0
                } else if let length {
                    table[index].bodyLeft = length
                } else {
                    table[index].untilClose = true
                    table[index].closeAfter = true
                }
                return true
            }

            for index in 0..<connections { send(index) }
            while table.contains(where: { $0.inFlight }) {
                let ready = poll(&polls, nfds_t(polls.count), 1000)
                if ready < 0 {
                    if errno == EINTR { continue }
                    errors += 1
                    break
                }
                if ready == 0 && HTTPLoad.debugging {
                    for (index, connection) in table.enumerated() where connection.inFlight {
                        HTTPLoad.debug(
                            "connection \(index) waiting: written \(connection.written), head \(connection.head.count) bytes, "
                                + "parsed \(connection.headParsed), body left \(connection.bodyLeft), events \(polls[index].events)"
                        )
                    }
                }
                if ready == 0, let deadlineNs, HTTPLoad.nowNs() > deadlineNs + 10_000_000_000 {
                    // Answers still missing 10 s past the end: count them as errors and stop.
                    errors += table.filter(\.inFlight).count
                    break
                }
                for index in 0..<connections where polls[index].fd >= 0 && polls[index].revents != 0 {
                    let revents = polls[index].revents
                    polls[index].revents = 0
                    if revents & Int16(POLLOUT) != 0 {
                        write(index)
                    } else {
                        readable(index)
                    }
                }
            }
            for index in 0..<connections { drop(index) }
        }
    }

    /// With GRACE_LOAD_DEBUG set, why each error happened, on stderr.
    static let debugging = getenv("GRACE_LOAD_DEBUG") != nil

    static func debug(_ text: String) {
        guard debugging else { return }
        let line = "http-load: \(text)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    static func nowNs() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Where the head's CRLF CRLF starts, if it is in `bytes`.
    static func headEnd(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index + 3] == 10 && bytes[index] == 13 && bytes[index + 1] == 10
                && bytes[index + 2] == 13
            {
                return index
            }
            index += 1
        }
        return nil
    }

    static func digit(_ byte: UInt8) -> Int? { (0x30...0x39).contains(byte) ? Int(byte - 0x30) : nil }

    /// The value of a header line `Name: value` when its name is `lowercaseName`, without leading spaces.
    static func headerValue(_ line: UnsafeBufferPointer<UInt8>, _ lowercaseName: StaticString)
        -> UnsafeBufferPointer<UInt8>?
    {
        let count = lowercaseName.utf8CodeUnitCount
        guard line.count > count, line[count] == 0x3A else { return nil }
        let name = lowercaseName.utf8Start
        for offset in 0..<count where line[offset] | 0x20 != name[offset] { return nil }
        var start = count + 1
        while start < line.count && (line[start] == 0x20 || line[start] == 0x09) { start += 1 }
        return UnsafeBufferPointer(rebasing: line[start...])
    }

    /// Whether `value` holds the lowercase ASCII `word`, in any case.
    static func contains(_ value: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard value.count >= count else { return false }
        let letters = word.utf8Start
        for start in 0...(value.count - count) {
            var matched = true
            for offset in 0..<count where value[start + offset] | 0x20 != letters[offset] {
                matched = false
                break
            }
            if matched { return true }
        }
        return false
    }

    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        while index + needle.count <= haystack.endIndex {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle)
            {
                return index - haystack.startIndex
            }
            index += 1
        }
        return nil
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }

    static func run(_ arguments: [String]) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let options = parse(arguments)
        let start = nowNs()
        let deadline = options.duration.map { start + UInt64($0 * 1e9) }
        var workers: [Worker] = []
        for index in 0..<options.threads {
            let share =
                options.connections / options.threads
                + (index < options.connections % options.threads ? 1 : 0)
            let budget = options.requests.map {
                $0 / options.threads + (index < $0 % options.threads ? 1 : 0)
            }
            workers.append(Worker(options: options, connections: share, budget: budget, deadlineNs: deadline))
        }
        for worker in workers {
            let context = Unmanaged.passRetained(worker).toOpaque()
            pthread_create(
                &worker.thread, nil,
                { context in
                    let worker = Unmanaged<Worker>.fromOpaque(context!).takeRetainedValue()
                    worker.run()
                    return nil
                }, context)
        }
        for worker in workers { pthread_join(worker.thread, nil) }
        let seconds = Double(nowNs() - start) / 1e9
        var latencies: [UInt32] = []
        var statuses: [Int: Int] = [:]
        var errors = 0
        for worker in workers {
            latencies += worker.latenciesUs
            statuses.merge(worker.statuses, uniquingKeysWith: +)
            errors += worker.errors
        }
        latencies.sort()
        func percentile(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "nan" }
            let rank = Int((p / 100 * Double(latencies.count)).rounded(.up))
            let value = Double(latencies[min(latencies.count - 1, max(0, rank - 1))]) / 1000
            return String((value * 1000).rounded() / 1000)
        }
        let requests = latencies.count
        let statusText = statuses.keys.sorted().map { "\($0):\(statuses[$0]!)" }.joined(separator: ",")
        print(
            "requests=\(requests) seconds=\(String((seconds * 1000).rounded() / 1000)) "
                + "rps=\(Int((Double(requests) / seconds).rounded())) p50_ms=\(percentile(50)) "
                + "p90_ms=\(percentile(90)) p99_ms=\(percentile(99)) max_ms=\(percentile(100)) "
                + "errors=\(errors) statuses=\(statusText.isEmpty ? "none" : statusText)")
        fflush(nil)
        return 0
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" || first == "\n" || first == "\r" {
            slice = slice.dropFirst()
        }
        while let last = slice.last, last == " " || last == "\t" || last == "\n" || last == "\r" {
            slice = slice.dropLast()
        }
        return String(slice)
    }

    func replacingSpaces() -> String { String(filter { $0 != " " && $0 != "\t" }) }
}
