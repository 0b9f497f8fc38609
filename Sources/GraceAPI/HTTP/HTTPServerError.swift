public enum HTTPServerError: Error, Sendable, Equatable {
    /// The host is not an IPv4 literal.
    case invalidHost(String)
    /// A numeric setting is out of range; the string names it.
    case invalidConfiguration(String)
    case alreadyRunning
    /// MHD could not start, most often because the port is taken or needs privileges.
    case startFailed(host: String, port: UInt16)
}
