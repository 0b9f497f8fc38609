#if canImport(Glibc)
    import Glibc
#endif

/// Where the server listens, as given to `--listen`: `unix:PATH`, `HOST:PORT` with an IPv4 literal,
/// or `[HOST]:PORT` with an IPv6 literal. Names are not resolved: an address that depends on DNS
/// would make the listening address, and so the `Host` check, depend on DNS too.
public enum ListenAddress: Hashable, Sendable, CustomStringConvertible {
    case unix(path: String)
    /// `host` is the literal without brackets.
    case tcp(host: String, port: UInt16)

    /// The daemon's default: the Unix socket, whose peer credentials identify the caller.
    public static let defaultSocket = ListenAddress.unix(path: "/run/graced/graced.sock")

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            // sockaddr_un holds 108 bytes including the terminating NUL.
            guard path.hasPrefix("/"), path.utf8.count < 108, !path.utf8.contains(0) else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]),
            text[text.index(after: colon)...].allSatisfy(\.isASCII)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard Self.isIPv6(host) else { return nil }
        } else {
            guard Self.isIPv4(host) else { return nil }
        }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    public var isUnix: Bool {
        if case .unix = self { return true }
        return false
    }

    /// 127.0.0.0/8 or ::1: only processes on this host can connect.
    public var isLoopback: Bool {
        guard case .tcp(let host, _) = self else { return false }
        if host.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return false }
            var loopback = in6_addr()
            _ = inet_pton(AF_INET6, "::1", &loopback)
            return withUnsafeBytes(of: address) { a in withUnsafeBytes(of: loopback) { a.elementsEqual($0) } }
        }
        return host.split(separator: ".").first == "127"
    }

    /// 0.0.0.0 or ::: every interface of the host.
    public var isWildcard: Bool {
        guard case .tcp(let host, _) = self else { return false }
        return host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0"
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        // inet_pton accepts exactly four decimal octets; the split also rules out leading zeros.
        return octets.count == 4 && octets.allSatisfy { !($0.count > 1 && $0.hasPrefix("0")) }
            && inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return !text.contains("%") && inet_pton(AF_INET6, text, &address) == 1
    }
}
