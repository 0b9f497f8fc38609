#if canImport(Glibc)
    import Glibc
#endif

/// One socket `HeadGate` holds: accepted, its first request head not yet judged (or already
/// answered by the gate and being drained before it is closed). Only the gate's thread touches it.
package struct GateClient {
    enum Phase {
        case awaitingHead
        /// The gate answered; what the client still sends is read and dropped until it hangs up.
        case answered
    }

    /// What the bytes a client has sent so far call for.
    enum Verdict {
        case wait
        case close
        /// A request libmicrohttpd 0.9.75 would answer with its status line twice, or with HTML;
        /// with the head as far as it could be read, for the audit trail.
        case answer(HTTPResponse, Refused)
        case handOver
    }

    /// What the gate read of a request it answered itself.
    struct Refused: Sendable {
        var requestLine: [UInt8]?
        var headers: HTTPHeaders?
    }

    let fd: Int32
    let address: sockaddr_storage
    let addressLength: socklen_t
    /// The client's group (`ClientGroup`), for the per-client limit; nil on a Unix socket.
    let key: [UInt8]?
    /// When the head is due; once answered, when the gate stops waiting for the client to hang up.
    var deadline: ContinuousClock.Instant
    var phase = Phase.awaitingHead

    /// Peeks at what the client has sent, up to `buffer.count` bytes, and consumes none of it: MHD
    /// reads the same bytes from the socket after the handover.
    func examine(hungUp: Bool, buffer: inout [UInt8]) -> Verdict {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK)) }
        if count == 0 { return .close }
        if count < 0 {
            return !hungUp && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? .wait : .close
        }
        let requestLine = RequestHead.requestLine(buffer[..<count]).map(Array.init)
        switch RequestHead.read(buffer[..<count]) {
        case .complete(let line, let headers):
            let refused = Refused(requestLine: Array(line), headers: headers)
            if let problem = MalformedHead.requestLineProblem(line) {
                return .answer(problem, refused)
            }
            if let problem = HeaderCountLimit.problem(buffer[..<count], requestLine: line, headers: headers) {
                return .answer(problem, refused)
            }
            if case .failure(.answeredByMHD(let status, let detail)) = RequestFraming.read(headers) {
                return .answer(RequestFraming.problem(status: status, detail: detail), refused)
            }
            return .handOver
        case .malformed:
            return .answer(
                MalformedHead.malformed("A header line has no colon."), Refused(requestLine: requestLine))
        case .incomplete:
            // A head this long cannot fit in MHD's memory for a connection either.
            if count >= buffer.count {
                return .answer(MalformedHead.tooLarge(limit: buffer.count), Refused(requestLine: requestLine))
            }
            return hungUp ? .close : .wait
        }
    }

    /// Sends the one answer and half-closes, so that the client reads it to its end.
    mutating func answer(_ response: HTTPResponse, lingeringUntil deadline: ContinuousClock.Instant) {
        let bytes = response.serialized(reason: MalformedHead.reason(response.status))
        // A few hundred bytes into a fresh socket's empty send buffer: one send suffices.
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        phase = .answered
        self.deadline = deadline
    }

    /// Reads and drops what the client has sent; true once it has hung up (or the socket failed).
    /// Closing with unread bytes would make the kernel answer with RST, which can destroy the answer
    /// before the client reads it. A client that keeps streaming is read a bounded amount per call,
    /// so it cannot hold the gate's thread.
    func drain(_ buffer: inout [UInt8]) -> Bool {
        for _ in 0..<16 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { continue }
            if count == 0 { return true }
            if errno == EINTR { continue }
            return errno != EAGAIN && errno != EWOULDBLOCK
        }
        return false
    }
}
