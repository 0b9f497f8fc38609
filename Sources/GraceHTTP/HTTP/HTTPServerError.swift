#if canImport(Glibc)
    import Glibc
#endif

public enum HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A numeric setting is out of range; the string names it.
    case invalidConfiguration(String)
    case alreadyRunning
    /// The listening socket could not be made: the port is taken, the folder is not writable, ...
    case listenFailed(String, errno: Int32)
    /// A Unix socket's path holds something we must not remove.
    case socketPathTaken(String, reason: String)
    /// The TLS key or certificate was refused by libmicrohttpd, or this build has no TLS.
    case tlsUnavailable(String)
    /// MHD could not start on the socket.
    case startFailed(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let name): "invalid server setting \(name)"
        case .alreadyRunning: "the server is already running"
        case .listenFailed(let address, let code):
            "cannot listen on \(address): \(String(cString: strerror(code)))"
        case .socketPathTaken(let path, let reason): "cannot listen on unix:\(path): \(reason)"
        case .tlsUnavailable(let reason): "cannot serve TLS: \(reason)"
        case .startFailed(let address): "libmicrohttpd could not start on \(address)"
        }
    }
}
