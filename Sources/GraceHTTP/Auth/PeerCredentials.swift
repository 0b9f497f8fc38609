#if canImport(Glibc)
    import Glibc
#endif

/// The process at the other end of a Unix socket, as the kernel recorded it at connect time
/// (SO_PEERCRED), with what /proc says of it now: its name and supplementary groups.
package struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: uid_t
    var gid: gid_t
    /// `/proc/PID/comm`; nil when the process has gone.
    var processName: String?
    /// The primary group and the supplementary groups from `/proc/PID/status`.
    var groups: Set<gid_t>

    /// nil when `fd` is not a connected Unix socket.
    static func of(socket fd: Int32, procRoot: String = "/proc") -> PeerCredentials? {
        // struct ucred needs _GNU_SOURCE, which Swift's Glibc module does not define; its layout is
        // fixed by the kernel ABI: pid, uid, gid, each 32 bits.
        var credentials = (pid: Int32(0), uid: uid_t(0), gid: gid_t(0))
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.pid > 0 else {
            return nil
        }
        let pid = credentials.pid
        let comm = readSmallFile("\(procRoot)/\(pid)/comm").map {
            String($0.prefix { $0 != "\n" }.prefix(32))
        }
        var groups: Set<gid_t> = [credentials.gid]
        if let status = readSmallFile("\(procRoot)/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") })
        {
            for field in line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                if let gid = gid_t(field) { groups.insert(gid) }
            }
        }
        return PeerCredentials(
            pid: pid, uid: credentials.uid, gid: credentials.gid, processName: comm, groups: groups)
    }

    /// `uid:1000 pid:4242 (unverified: qemu-system-x86)`: the uid is the kernel's word; the process
    /// name is whatever the process set (`prctl(PR_SET_NAME)`), so it is marked as its claim.
    var name: String {
        "uid:\(uid) pid:\(pid)" + (processName.map { " (unverified: \($0))" } ?? "")
    }

    /// `uid:1000`: what the kernel vouches for and the process cannot change.
    var account: String { "uid:\(uid)" }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}
