import CHTTP

/// The client CAs (and the CRLs that revoke their certificates) a TLS listener verifies client
/// certificates against, as one GnuTLS trust list made at start and freed with the listener.
package final class ClientTrust: @unchecked Sendable {
    /// `gnutls_x509_trust_list_t`; only read after init (GnuTLS's verification does not change it).
    let list: UnsafeMutableRawPointer

    /// nil when the CA PEM holds no certificate, or a CRL does not parse or is not signed by one of
    /// the CAs.
    init?(caPEM: String, crlPEM: String?) {
        let made = caPEM.withCString { ca in
            if let crlPEM {
                return crlPEM.withCString { crl in grace_client_trust_new(ca, crl) }
            }
            return grace_client_trust_new(ca, nil)
        }
        guard let made else { return nil }
        list = made
    }

    deinit {
        grace_client_trust_free(list)
    }
}
