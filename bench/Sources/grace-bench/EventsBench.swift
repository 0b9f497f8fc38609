import GraceAPI
import GraceHTTP
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `grace-bench --events [--clients N] [--trials N]`: the event stream. Clients are raw sockets on
/// loopback in this process, read by one thread with poll(2), so a thousand cost no threads.
///
/// 1. Latency: `EventHub.publish` returning to the bytes of that event read by one SSE client.
/// 2. N concurrent clients: the same latency measured to the last of them (the whole fan-out), the
///    process's RSS growth with them connected, and its CPU while idle and while broadcasting.
struct EventsBench {
    let application: Application
    let port: UInt16

    struct Payload: Encodable {
        var seq: Int
    }

    /// One SSE connection, its bytes counted as they come.
    final class Client {
        let fd: Int32
        var received: [UInt8] = []
        var events = 0

        init(port: UInt16) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            precondition(fd >= 0, "socket: errno \(errno)")
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            precondition(connected == 0, "connect: errno \(errno)")
            let request = Array("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
            precondition(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == request.count)
        }

        deinit { close(fd) }

        /// Reads what is there; returns how many new events (`event:` lines) arrived.
        func drain() -> Int {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let count = buffer.withUnsafeMutableBytes {
                recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
            }
            guard count > 0 else { return 0 }
            // Count "\nevent: " (every event frame has one; heartbeats and the opening comment do not).
            let pattern = Array("event: ".utf8)
            received += buffer[..<count]
            var found = 0
            var index = 0
            while index + pattern.count <= received.count {
                if received[index] == pattern[0] && Array(received[index..<index + pattern.count]) == pattern
                {
                    found += 1
                    index += pattern.count
                } else {
                    index += 1
                }
            }
            // Keep only a tail that could hold the start of a split pattern.
            received = Array(received.suffix(pattern.count - 1))
            events += found
            return found
        }
    }

    /// Waits until every client has `target` events; returns the time each reached it (ms).
    func waitAll(_ clients: [Client], target: Int) -> [Double] {
        var reached = [Double](repeating: -1, count: clients.count)
        var remaining = clients.indices.filter { clients[$0].events < target }
        for index in clients.indices where clients[index].events >= target { reached[index] = nowMs() }
        var fds = clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        while !remaining.isEmpty {
            _ = poll(&fds, nfds_t(fds.count), 1000)
            var still: [Int] = []
            for index in remaining {
                if fds[index].revents != 0 { _ = clients[index].drain() }
                if clients[index].events >= target {
                    reached[index] = nowMs()
                } else {
                    still.append(index)
                }
            }
            remaining = still
            for index in fds.indices { fds[index].revents = 0 }
        }
        return reached
    }

    func connect(_ count: Int) -> [Client] {
        let clients = (0..<count).map { _ in Client(port: port) }
        // Until every stream is open: the opening comment has arrived.
        for client in clients {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var seen: [UInt8] = []
            while !String(decoding: seen, as: UTF8.self).contains("retry:") {
                let got = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                precondition(got > 0, "stream did not open")
                seen += buffer[..<got]
            }
        }
        return clients
    }

    /// Publishes `trials` events, one at a time, each timed to every client having read it.
    func latency(_ clients: [Client], trials: Int) -> (first: [Double], all: [Double]) {
        var first: [Double] = []
        var all: [Double] = []
        for trial in 0..<trials {
            let target = (clients.first?.events ?? 0) + 1
            let start = nowMs()
            application.events.publish(
                type: .jobPhase, gpu: "0000:c3:00.0", job: "bench", payload: Payload(seq: trial))
            let reached = waitAll(clients, target: target)
            first.append(reached[0] - start)
            all.append((reached.max() ?? start) - start)
            usleep(2_000)
        }
        return (first, all)
    }

    static func rssKiB() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") {
                return Int(text.dropFirst(6).filter(\.isNumber)) ?? 0
            }
        }
        return 0
    }

    func run(clients count: Int, trials: Int) {
        report(
            "events: machine \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores; trials \(trials); clients \(count)"
        )
        let one = connect(1)
        let single = latency(one, trials: trials)
        report("publish to bytes at 1 SSE client: " + Statistics(single.first).line(unit: " ms"))

        let rssBefore = Self.rssKiB()
        let many = connect(count)
        usleep(500_000)
        let rssWith = Self.rssKiB()
        report(
            "\(count) SSE clients connected: RSS \(rssBefore / 1024) MiB -> \(rssWith / 1024) MiB "
                + "(+\((rssWith - rssBefore) / count) KiB per client, clients' sockets included); "
                + "subscribers \(application.events.subscriberCount)")

        let cpuIdle = cpuSeconds()
        let wallIdle = nowMs()
        usleep(5_000_000)
        let idle = (cpuSeconds() - cpuIdle) / ((nowMs() - wallIdle) / 1000) * 100
        report(
            "CPU with \(count) idle clients (heartbeats only): \(String((idle * 10).rounded() / 10)) % of one core"
        )

        let cpuBefore = cpuSeconds()
        let wallBefore = nowMs()
        let fanOut = latency(many, trials: trials)
        let busy = (cpuSeconds() - cpuBefore) / ((nowMs() - wallBefore) / 1000) * 100
        let rate = Double(trials) / ((nowMs() - wallBefore) / 1000)
        report(
            "publish to bytes at the first of \(count) clients: " + Statistics(fanOut.first).line(unit: " ms")
        )
        report(
            "publish to bytes at the last of \(count) clients: " + Statistics(fanOut.all).line(unit: " ms"))
        report(
            "CPU while broadcasting \(String(rate.rounded())) events/s to \(count) clients (client reads included): "
                + "\(String((busy * 10).rounded() / 10)) % of one core; RSS \(Self.rssKiB() / 1024) MiB")
        withExtendedLifetime(one) {}
        withExtendedLifetime(many) {}
    }
}
