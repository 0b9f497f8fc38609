import GraceHTTP

/// A strong entity tag for a response body: FNV-1a over the bytes, so a dashboard that polls an
/// unchanged resource gets 304 without the server comparing bodies.
enum ETag {
    static func of(_ body: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "\"" + String(hash, radix: 16) + "-" + String(body.count, radix: 16) + "\""
    }

    /// RFC 9110 `If-None-Match`: a list of tags, or `*`. Weak comparison is enough for GET.
    static func matches(_ header: String?, _ tag: String) -> Bool {
        guard let header else { return false }
        if header.trimmingCharacters(in: " ") == "*" { return true }
        return header.split(separator: ",").contains { candidate in
            var text = candidate.trimmingCharacters(in: " ")
            if text.hasPrefix("W/") { text.removeFirst(2) }
            return text == tag
        }
    }
}

extension StringProtocol {
    func trimmingCharacters(in character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}
