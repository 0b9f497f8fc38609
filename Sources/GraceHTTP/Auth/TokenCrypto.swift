import CGnuTLS

/// The primitives behind bearer tokens. They come from GnuTLS because libmicrohttpd already links it
/// for TLS, so tokens add no second crypto library to a daemon that runs as root.
package enum TokenCrypto {
    /// 256 bits: far beyond guessing, so a plain salted SHA-256 suffices (no slow KDF is needed,
    /// unlike for passwords people choose).
    static let secretLength = 32
    static let saltLength = 16
    static let digestLength = 32
    /// Makes a leaked token recognisable to secret scanners and to people reading a log.
    static let prefix = "grace_"

    static func randomBytes(_ count: Int) throws(TokenFileError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBytes { raw in
            gnutls_rnd(GNUTLS_RND_KEY, raw.baseAddress, raw.count)
        }
        guard status == 0 else { throw .cryptoFailed(operation: "produce random bytes", code: status) }
        return bytes
    }

    /// SHA-256(salt || secret).
    static func digest(salt: [UInt8], secret: [UInt8]) throws(TokenFileError) -> [UInt8] {
        let input = salt + secret
        var output = [UInt8](repeating: 0, count: digestLength)
        let status = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                gnutls_hash_fast(GNUTLS_DIG_SHA256, source.baseAddress, source.count, target.baseAddress)
            }
        }
        guard status == 0 else { throw .cryptoFailed(operation: "compute a SHA-256 digest", code: status) }
        return output
    }

    /// Compares without stopping at the first difference, so the time taken does not tell how many
    /// leading bytes of a guess were right.
    static func equalInConstantTime(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                gnutls_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }

    /// The form shown to people: `grace_` and 64 lowercase hex digits.
    static func token(secret: [UInt8]) -> String {
        prefix + hex(secret)
    }

    /// The secret inside a presented token, or `nil` when it is not exactly `grace_` and 64 lowercase
    /// hex digits.
    static func secret(fromToken token: String) -> [UInt8]? {
        let text = Array(token.utf8)
        let prefixBytes = Array(prefix.utf8)
        guard text.count == prefixBytes.count + 2 * secretLength, text.starts(with: prefixBytes) else {
            return nil
        }
        return bytes(hex: text[prefixBytes.count...])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Lowercase hex only, the one spelling this code writes.
    static func bytes(hex text: String) -> [UInt8]? {
        bytes(hex: Array(text.utf8)[...])
    }

    /// Reads every digit before deciding, so a presented token's first bad digit is not timed.
    private static func bytes(hex text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var valid = true
        var result: [UInt8] = []
        result.reserveCapacity(text.count / 2)
        var high: UInt8 = 0
        for (offset, character) in text.enumerated() {
            let value: UInt8
            switch character {
            case 0x30...0x39: value = character - 0x30
            case 0x61...0x66: value = character - 0x61 + 10
            default:
                value = 0
                valid = false
            }
            if offset % 2 == 0 {
                high = value
            } else {
                result.append(high << 4 | value)
            }
        }
        return valid ? result : nil
    }
}
