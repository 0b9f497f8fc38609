/// Tells who a presented bearer token belongs to, from the salted hashes of a token file.
///
/// Every call does the same work whether or not the token matches: one hash and one constant-time
/// comparison per record, with no early exit on a match and a stand-in secret for a malformed token.
/// So the time a request takes says nothing about whether, or how nearly, its token matched.
public final class TokenVerifier: Sendable {
    private let records: [TokenRecord]

    public init(records: [TokenRecord]) {
        self.records = records
    }

    /// The name and role of the token's record, or `nil` when no record matches.
    public func identify(_ presentedToken: String) -> (name: String, role: Role)? {
        record(for: presentedToken).map { ($0.name, $0.role) }
    }

    /// Whether this verifier still has the record `caller` was identified by (same name, same hash): a
    /// token revoked, or revoked and created again under its name, is not.
    func stillKnows(_ caller: Caller) -> Bool {
        guard let digest = caller.tokenDigest else { return false }
        return records.contains { "token:\($0.name)" == caller.name && $0.hash == digest }
    }

    /// The record a presented token matches (see the type's notes on timing).
    func record(for presentedToken: String) -> TokenRecord? {
        let secret = TokenCrypto.secret(fromToken: presentedToken)
        let hashed = secret ?? [UInt8](repeating: 0, count: TokenCrypto.secretLength)
        var match: TokenRecord?
        for record in records {
            // A digest GnuTLS refuses to compute matches nothing.
            let digest = try? TokenCrypto.digest(salt: record.salt, secret: hashed)
            let equal = digest.map { TokenCrypto.equalInConstantTime($0, record.hash) } ?? false
            if equal && match == nil { match = record }
        }
        // Decided only after the loop, so a malformed token costs what a well-formed one does.
        guard secret != nil, let match else { return nil }
        return match
    }
}
