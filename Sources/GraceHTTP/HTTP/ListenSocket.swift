#if canImport(Glibc)
    import Glibc
#endif

/// A bound, listening, non-blocking socket that the server owns; the head gate accepts on it (MHD
/// itself, on a TLS listener).
///
/// A Unix socket is bound inside a fresh private folder, given its owner and mode there, and only
/// then renamed into place, so no client can ever connect to it with looser permissions than the
/// final ones, whatever the process's umask.
package struct ListenSocket: Sendable {
    let fd: Int32
    let address: ListenAddress
    /// The bound port of a TCP socket (the kernel's choice for port 0); 0 for a Unix socket.
    let port: UInt16
    /// For a Unix socket: the inode bound, so that `close()` removes our socket and not a successor's.
    private let inode: (dev: UInt, ino: UInt)?

    /// Owner group and mode of a Unix socket.
    struct UnixPermissions: Sendable {
        var group: gid_t?
        var mode: mode_t = 0o660
    }

    static func open(_ address: ListenAddress, backlog: Int32 = 128, unix: UnixPermissions = .init())
        throws(HTTPServerError) -> ListenSocket
    {
        switch address {
        case .tcp(let host, let port):
            return try openTCP(address, host: host, port: port, backlog: backlog)
        case .unix(let path):
            return try openUnix(address, path: path, backlog: backlog, permissions: unix)
        }
    }

    /// Stops listening; a Unix socket's file is removed if it is still the one we bound.
    func close() {
        _ = Glibc.close(fd)
        guard case .unix(let path) = address, let inode else { return }
        var status = stat()
        if lstat(path, &status) == 0 && UInt(status.st_dev) == inode.dev && UInt(status.st_ino) == inode.ino {
            unlink(path)
        }
    }

    // MARK: TCP

    private static func openTCP(_ address: ListenAddress, host: String, port: UInt16, backlog: Int32)
        throws(HTTPServerError) -> ListenSocket
    {
        let v6 = host.contains(":")
        let fd = streamSocket(v6 ? AF_INET6 : AF_INET)
        guard fd >= 0 else { throw .listenFailed(address.description, errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        if v6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, host, &socketAddress.sin6_addr)
            bound = bindSocket(fd, to: &socketAddress)
        } else {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            _ = inet_pton(AF_INET, host, &socketAddress.sin_addr)
            bound = bindSocket(fd, to: &socketAddress)
        }
        guard bound == 0, listen(fd, backlog) == 0, setNonBlocking(fd) else {
            let code = errno
            _ = Glibc.close(fd)
            throw .listenFailed(address.description, errno: code)
        }
        return ListenSocket(fd: fd, address: address, port: boundPort(fd, v6: v6), inode: nil)
    }

    private static func boundPort(_ fd: Int32, v6: Bool) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return 0 }
        return withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port sit at the same offset, right after the family.
            UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
        }
    }

    // MARK: Unix

    private static func openUnix(
        _ address: ListenAddress, path: String, backlog: Int32, permissions: UnixPermissions
    ) throws(HTTPServerError) -> ListenSocket {
        let folder =
            path.lastIndex(of: "/").map { String(path[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? "/"
        try makeFolder(folder, address: address)
        try removeStaleSocket(path, address: address)

        // mkdtemp makes the private folder 0700: nobody else can reach the socket inside it.
        var template = Array("\(folder == "/" ? "" : folder)/.graced-bind-XXXXXX".utf8CString)
        guard
            let privateFolder = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) })
                .map({ String(cString: $0) })
        else { throw .listenFailed(address.description, errno: errno) }
        defer { rmdir(privateFolder) }
        let temporary = privateFolder + "/s"

        let fd = streamSocket(AF_UNIX)
        guard fd >= 0 else { throw .listenFailed(address.description, errno: errno) }
        func fail(_ code: Int32) -> HTTPServerError {
            _ = Glibc.close(fd)
            unlink(temporary)
            return .listenFailed(address.description, errno: code)
        }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            let bytes = Array(temporary.utf8)
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
        }
        let bound = bindSocket(fd, to: &socketAddress)
        guard bound == 0 else { throw fail(errno) }
        if let group = permissions.group,
            chown(temporary, 0, group) != 0 && chown(temporary, geteuid(), group) != 0
        {
            throw fail(errno)
        }
        guard chmod(temporary, permissions.mode) == 0, listen(fd, backlog) == 0, setNonBlocking(fd) else {
            throw fail(errno)
        }
        guard rename(temporary, path) == 0 else { throw fail(errno) }
        var status = stat()
        guard lstat(path, &status) == 0 else { throw fail(errno) }
        return ListenSocket(
            fd: fd, address: address, port: 0, inode: (UInt(status.st_dev), UInt(status.st_ino)))
    }

    /// Creates the socket's folder (0755: the socket's own mode decides who connects) if missing. A
    /// folder made here gets 0755 whatever graced's umask (the unit's is 0077, which made it 0700 and
    /// kept the socket group's members out); an existing folder is left as its owner set it.
    private static func makeFolder(_ folder: String, address: ListenAddress) throws(HTTPServerError) {
        var current = ""
        for component in folder.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) == 0 {
                guard chmod(current, 0o755) == 0 else {
                    throw .listenFailed(address.description, errno: errno)
                }
            } else if errno != EEXIST {
                throw .listenFailed(address.description, errno: errno)
            }
        }
    }

    /// A socket file left by a process that died is removed; a live one means another server.
    private static func removeStaleSocket(_ path: String, address: ListenAddress) throws(HTTPServerError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw .socketPathTaken(path, reason: "it exists and is not a socket")
        }
        let probe = streamSocket(AF_UNIX)
        defer { _ = Glibc.close(probe) }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8).prefix(raw.count - 1))
        }
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected == 0 {
            throw .socketPathTaken(path, reason: "another server is listening on it")
        }
        unlink(path)
    }

    /// `bind` with any of the sockaddr types, which C passes as `struct sockaddr *`.
    private static func bindSocket<Address>(_ fd: Int32, to address: inout Address) -> Int32 {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
    }

    /// A stream socket closed on exec, so no child process (a modprobe, a test's curl) inherits it.
    private static func streamSocket(_ domain: Int32) -> Int32 {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }

    private static func setNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }
}
