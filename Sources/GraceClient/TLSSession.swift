import CGnuTLS

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking TLS client session over a connected socket, through GnuTLS (the library graced's own
/// listeners use). The handshake verifies the server's certificate against the CAs given (or the
/// system's trust store) and the name or address gracectl was told to reach; anything less and the
/// session is not made, so no request (and no token) is ever sent to an unverified server.
final class TLSSession {
    private let credentials: gnutls_certificate_credentials_t
    private var session: gnutls_session_t?

    /// Loads the credentials and shakes hands over `fd`, which stays the caller's to close.
    init(fd: Int32, host: String, options: TLSOptions) throws(BlockingHTTPClient.ConnectionError) {
        var allocated: gnutls_certificate_credentials_t?
        guard gnutls_certificate_allocate_credentials(&allocated) == GNUTLS_E_SUCCESS, let allocated else {
            throw Self.failure("cannot allocate TLS credentials")
        }
        credentials = allocated
        if let caFile = options.caFile {
            let count = gnutls_certificate_set_x509_trust_file(credentials, caFile, GNUTLS_X509_FMT_PEM)
            guard count > 0 else {
                throw Self.failure(
                    "--cacert \(caFile): "
                        + (count == 0 ? "no PEM certificate in it" : Self.text(count)))
            }
        } else {
            let count = gnutls_certificate_set_x509_system_trust(credentials)
            guard count > 0 else {
                throw Self.failure(
                    "the system's trust store has no CA certificates"
                        + (count < 0 ? " (\(Self.text(count)))" : "") + "; give the CA with --cacert")
            }
        }
        switch (options.certificateFile, options.keyFile) {
        case (let certificate?, let key?):
            let loaded = gnutls_certificate_set_x509_key_file(
                credentials, certificate, key, GNUTLS_X509_FMT_PEM)
            guard loaded >= 0 else {
                throw Self.failure("--cert \(certificate) with --key \(key): \(Self.text(loaded))")
            }
        case (nil, nil): break
        default: throw Self.failure("--cert and --key go together")
        }
        var made: gnutls_session_t?
        guard gnutls_init(&made, UInt32(GNUTLS_CLIENT)) == GNUTLS_E_SUCCESS, let made else {
            throw Self.failure("cannot start a TLS session")
        }
        session = made
        gnutls_set_default_priority(made)
        gnutls_credentials_set(made, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(credentials))
        // SNI names a host, never an address (RFC 6066 §3).
        if !GraceServer.isAddress(host, family: AF_INET) && !GraceServer.isAddress(host, family: AF_INET6) {
            gnutls_server_name_set(made, GNUTLS_NAME_DNS, host, host.utf8.count)
        }
        // The handshake itself fails unless the chain verifies and the certificate names `host`
        // (a DNS name, or an IP address against its iPAddress entries).
        gnutls_session_set_verify_cert(made, host, 0)
        gnutls_transport_set_int2(made, fd, fd)
        gnutls_handshake_set_timeout(made, 30_000)
        var result: Int32
        repeat {
            result = gnutls_handshake(made)
        } while result < 0 && gnutls_error_is_fatal(result) == 0
        guard result == GNUTLS_E_SUCCESS else {
            if result == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR {
                let status = gnutls_session_get_verify_cert_status(made)
                throw Self.failure(
                    "the server's certificate does not verify for \(host) (\(Self.verificationText(status))); "
                        + "gracectl sent nothing. Give the CA that issued it with --cacert, and reach the "
                        + "server by a name or address its certificate lists")
            }
            throw Self.failure("TLS handshake with \(host) failed: \(Self.text(result))")
        }
    }

    deinit {
        if let session { gnutls_deinit(session) }
        gnutls_certificate_free_credentials(credentials)
    }

    /// Sends everything; the failure's words, or nil.
    func sendAll(_ bytes: [UInt8]) -> String? {
        guard let session else { return "the TLS session is closed" }
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                gnutls_record_send(session, $0.baseAddress, $0.count)
            }
            if count == Int(GNUTLS_E_INTERRUPTED) || count == Int(GNUTLS_E_AGAIN) { continue }
            guard count > 0 else { return Self.text(Int32(count)) }
            sent += count
        }
        return nil
    }

    /// Reads what comes next into `buffer`: its count, or 0 at the end of the stream. A peer that
    /// closes the socket without TLS's closing alert ends the stream too: graced's answers are
    /// framed by their length or chunks, so a cut answer is noticed by the HTTP parser.
    func receive(_ buffer: inout [UInt8]) throws(BlockingHTTPClient.ConnectionError) -> Int {
        guard let session else { return 0 }
        while true {
            let count = buffer.withUnsafeMutableBytes {
                gnutls_record_recv(session, $0.baseAddress, $0.count)
            }
            if count >= 0 { return count }
            if count == Int(GNUTLS_E_INTERRUPTED) || count == Int(GNUTLS_E_AGAIN) { continue }
            if count == Int(GNUTLS_E_PREMATURE_TERMINATION) { return 0 }
            throw Self.failure("reading over TLS: \(Self.text(Int32(count)))")
        }
    }

    static func text(_ code: Int32) -> String {
        String(cString: gnutls_strerror(code))
    }

    /// GnuTLS's own words for a verification status ("The certificate is NOT trusted. ...").
    static func verificationText(_ status: UInt32) -> String {
        var printed = gnutls_datum_t()
        guard gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &printed, 0) == 0,
            let data = printed.data
        else { return "status \(status)" }
        defer { grace_gnutls_free(data) }
        let text = String(decoding: UnsafeBufferPointer(start: data, count: Int(printed.size)), as: UTF8.self)
        return String(text.reversed().drop { $0 == " " }.reversed())
    }

    private static func failure(_ description: String) -> BlockingHTTPClient.ConnectionError {
        BlockingHTTPClient.ConnectionError(description: description, code: nil)
    }
}
