#if canImport(Glibc)
    import Glibc
#endif

/// The key a connection's address is counted under for the per-client limit: addresses one
/// party can choose among freely count as one client.
///
/// - Every loopback address (127/8, `::1`, `::ffff:127.0.0.0/104`) is one client: any local user can
///   bind any of the 16 million addresses in 127/8, so keying on the exact address would let one
///   process be millions of clients.
/// - An IPv6 address counts by its /64: a host is normally handed a whole /64 and may use any
///   address in it.
/// - An IPv4-mapped IPv6 address counts as the IPv4 address it carries.
///
/// The keys of the three kinds have different lengths (1, 4 and 8 bytes), so they never collide.
package enum ClientGroup {
    static let loopback: [UInt8] = [127]

    /// nil for an address that is not IP (a Unix socket's client).
    static func key(_ address: sockaddr_storage) -> [UInt8]? {
        var address = address
        switch Int32(address.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &address) { raw in
                withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { key(ipv4: Array($0)) }
            }
        case AF_INET6:
            return withUnsafeBytes(of: &address) { raw in
                withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { key(ipv6: Array($0)) }
            }
        default:
            return nil
        }
    }

    /// `bytes`: the four bytes of an IPv4 address, in network order.
    static func key(ipv4 bytes: [UInt8]) -> [UInt8] {
        bytes.first == 127 ? loopback : bytes
    }

    /// `bytes`: the sixteen bytes of an IPv6 address, in network order.
    static func key(ipv6 bytes: [UInt8]) -> [UInt8] {
        let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff]
        if bytes.starts(with: mappedPrefix) {
            return key(ipv4: Array(bytes[12..<16]))
        }
        if bytes == Array(repeating: 0, count: 15) + [1] {
            return loopback
        }
        return Array(bytes.prefix(8))
    }

    /// The account an anonymous caller's connections count under: its group, so that a caller
    /// without credentials cannot multiply its share by choosing among addresses.
    static func anonymousAccount(of socket: Int32) -> String {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) }
        }
        guard named == 0, let key = key(address) else { return "anonymous" }
        return "anonymous@" + key.map { String($0, radix: 16) }.joined(separator: ".")
    }
}
