#if canImport(Glibc)
    import Glibc
#endif

/// A private folder under $TMPDIR (or /tmp) for the simulated host and its database.
enum TemporaryFolder {
    struct CreationError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "could not create a temporary folder (errno \(errno))" }
    }

    static func create(prefix: String) throws -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/" + prefix + "-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw CreationError(errno: errno) }
        return String(cString: template)
    }

    /// Removes the folder and everything in it, depth first, without following links.
    static func remove(_ path: String) {
        _ = nftw(path, { entry, _, type, _ in
            guard let entry else { return 0 }
            _ = type == FTW_DP ? rmdir(entry) : unlink(entry)
            return 0
        }, 16, FTW_DEPTH | FTW_PHYS)
    }
}
