#if canImport(Glibc)
    import Glibc
#endif

/// One connection to graced: a socket, spoken to directly or through a TLS session.
final class ClientConnection {
    let fd: Int32
    private let tls: TLSSession?

    init(fd: Int32, tls: TLSSession?) {
        self.fd = fd
        self.tls = tls
    }

    deinit { close(fd) }

    /// Why the sending stopped, or nil when everything went out.
    struct SendFailure: Error {
        var reason: String
        /// The errno, for a plain socket.
        var code: Int32?
    }

    func sendAll(_ bytes: [UInt8]) -> SendFailure? {
        if let tls {
            return tls.sendAll(bytes).map { SendFailure(reason: $0, code: nil) }
        }
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a peer that hung up gives EPIPE here rather than killing gracectl by SIGPIPE.
            let count = bytes[sent...].withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                return SendFailure(reason: BlockingHTTPClient.errorText(errno), code: errno)
            }
            sent += count
        }
        return nil
    }

    /// The next bytes into `buffer`: their count, 0 at the end. `server` names it in errors. A reset
    /// after part of an answer ends it (a server closing with our bytes unread still answered).
    func receive(_ buffer: inout [UInt8], from server: GraceServer, haveSome: Bool)
        throws(BlockingHTTPClient.ConnectionError) -> Int
    {
        if let tls { return try tls.receive(&buffer) }
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count >= 0 { return count }
            let code = errno
            if code == EINTR { continue }
            if code == ECONNRESET && haveSome { return 0 }
            throw BlockingHTTPClient.ConnectionError(
                description: "reading graced's answer from \(server): \(BlockingHTTPClient.errorText(code))",
                code: code)
        }
    }
}
