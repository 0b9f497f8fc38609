import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// One bearer token as stored: who it is for and a salted hash of its secret, never the secret.
public struct TokenRecord: Sendable, Equatable {
    /// 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`, unique within a file.
    public let name: String
    public let role: Role
    /// RFC 3339 UTC with milliseconds, as the rest of the API writes times.
    public let createdAt: String
    public let salt: [UInt8]
    /// SHA-256(salt || secret).
    public let hash: [UInt8]

    public init(name: String, role: Role, createdAt: String, salt: [UInt8], hash: [UInt8]) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.salt = salt
        self.hash = hash
    }
}

/// Why a token file cannot be used or changed, each with what to do about it.
public enum TokenFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Separate from the other cases so that a caller may treat "no file" as "no tokens yet".
    case missing(path: String)
    case symlink(path: String)
    case notRegularFile(path: String)
    case wrongOwner(path: String, owner: UInt32, expected: UInt32)
    /// `mode` has group or other permission bits.
    case exposed(path: String, mode: UInt32)
    case invalidContents(path: String, reason: String)
    case duplicateName(path: String, name: String)
    case unknownName(path: String, name: String)
    case invalidName(String)
    case system(path: String, operation: String, errno: Int32)
    /// GnuTLS failed to make random bytes or a digest, which it does only when its self-tests fail.
    case cryptoFailed(operation: String, code: Int32)

    public var description: String {
        switch self {
        case .missing(let path):
            return "there is no token file at \(path); "
                + "graced token create --tokens \(path) --name NAME --role ROLE creates it"
        case .symlink(let path):
            return "\(path) is a symbolic link, which could point the service at a file someone else "
                + "controls; replace it with the regular file it points to"
        case .notRegularFile(let path):
            return "\(path) is not a regular file; remove it and create the token file again"
        case .wrongOwner(let path, let owner, let expected):
            let user = expected == 0 ? "root" : String(expected)
            return "\(path) is owned by uid \(owner), not by uid \(expected) that reads it; "
                + "run: chown \(user) \(path)"
        case .exposed(let path, let mode):
            return "\(path) has mode \(octal(mode)), so users other than its owner may read or change it; "
                + "run: chmod 600 \(path)"
        case .invalidContents(let path, let reason):
            return "\(path) is not a valid token file: \(reason)"
        case .duplicateName(let path, let name):
            return "\(path) already holds a token named '\(name)'; names are unique (graced token revoke "
                + "--tokens \(path) \(name) removes it)"
        case .unknownName(let path, let name):
            return
                "\(path) holds no token named '\(name)'; graced token list --tokens \(path) shows the names"
        case .invalidName(let name):
            return "'\(name)' is not a valid token name: use 1 to 64 characters of A-Z a-z 0-9 . _ @ -"
        case .system(let path, let operation, let code):
            return "cannot \(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .cryptoFailed(let operation, let code):
            return "GnuTLS could not \(operation) (error \(code)); no token was created"
        }
    }

    private func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// The file of bearer tokens graced accepts (`/etc/graced/tokens` by default), as JSON:
/// `{"tokens": [{"name", "role", "createdAt", "salt", "hash"}]}` with hex salts and hashes.
///
/// A reader trusts the file only when nobody but the service's own user could have written it or
/// read the hashes in it: a regular file, not a link, owned by the effective uid, mode 0600 or
/// narrower.
public enum TokenFile {
    public static let defaultPath = "/etc/graced/tokens"

    /// Far above any real file; stops a mistaken path (a disk image, /dev/zero's cousin) from being
    /// read into memory.
    static let maximumSize = 4 << 20

    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...64).contains(bytes.count)
            && bytes.allSatisfy { byte in
                switch byte {
                case 0x30...0x39, 0x41...0x5a, 0x61...0x7a, 0x2e, 0x5f, 0x40, 0x2d: true
                default: false
                }
            }
    }

    /// The records of an existing file, after checking that the file may be trusted.
    public static func load(path: String) throws(TokenFileError) -> [TokenRecord] {
        // O_NOFOLLOW: the check is on the file actually opened, not on a path that can be swapped
        // between a stat and an open. O_NONBLOCK: a FIFO at the path must not hang the reader.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            var status = stat()
            if code == ENOENT { throw .missing(path: path) }
            if code == ELOOP, lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK {
                throw .symlink(path: path)
            }
            throw .system(path: path, operation: "open", errno: code)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .system(path: path, operation: "stat", errno: errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path: path) }
        guard status.st_uid == geteuid() else {
            throw .wrongOwner(path: path, owner: status.st_uid, expected: geteuid())
        }
        guard status.st_mode & 0o077 == 0 else { throw .exposed(path: path, mode: status.st_mode & 0o7777) }
        return try decode(try readAll(fd, path: path), path: path)
    }

    /// The same as `load`: listing reads a file under the same rules the service does.
    public static func list(path: String) throws(TokenFileError) -> [TokenRecord] {
        try load(path: path)
    }

    /// Adds a token and returns its secret, the only time the secret exists outside the caller's
    /// hands. Creates the file (mode 0600) and its folder (mode 0700) when they do not exist.
    /// `now` is wall-clock milliseconds, as `Timestamp.nowMs()` gives.
    public static func create(path: String, name: String, role: Role, now: Int64 = Timestamp.nowMs())
        throws(TokenFileError) -> String
    {
        guard isValidName(name) else { throw .invalidName(name) }
        try createFolders(folder(of: path))
        return try whileLocked(path) { folder throws(TokenFileError) in
            var records: [TokenRecord]
            do throws(TokenFileError) {
                records = try load(path: path)
            } catch .missing {
                records = []
            }
            guard !records.contains(where: { $0.name == name }) else {
                throw .duplicateName(path: path, name: name)
            }
            let secret = try TokenCrypto.randomBytes(TokenCrypto.secretLength)
            let salt = try TokenCrypto.randomBytes(TokenCrypto.saltLength)
            let hash = try TokenCrypto.digest(salt: salt, secret: secret)
            records.append(
                TokenRecord(
                    name: name, role: role, createdAt: Timestamp.rfc3339(ms: now), salt: salt, hash: hash))
            try replace(path, with: encode(records), folder: folder)
            return TokenCrypto.token(secret: secret)
        }
    }

    /// Removes the token named `name`; the file stays, possibly with no tokens.
    public static func revoke(path: String, name: String) throws(TokenFileError) {
        try whileLocked(path) { folder throws(TokenFileError) in
            var records = try load(path: path)
            guard let index = records.firstIndex(where: { $0.name == name }) else {
                throw .unknownName(path: path, name: name)
            }
            records.remove(at: index)
            try replace(path, with: encode(records), folder: folder)
        }
    }

    // MARK: - The format

    private struct StoredFile: Codable {
        var tokens: [StoredToken]
    }

    private struct StoredToken: Codable {
        var name: String
        var role: String
        var createdAt: String
        var salt: String
        var hash: String
    }

    static func encode(_ records: [TokenRecord]) -> [UInt8] {
        let stored = StoredFile(
            tokens: records.map {
                StoredToken(
                    name: $0.name, role: $0.role.rawValue, createdAt: $0.createdAt,
                    salt: TokenCrypto.hex($0.salt), hash: TokenCrypto.hex($0.hash))
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Only strings go in; a failure would be a programming error.
        guard let data = try? encoder.encode(stored) else {
            preconditionFailure("token file encoding failed")
        }
        return Array(data) + [0x0a]
    }

    static func decode(_ bytes: [UInt8], path: String) throws(TokenFileError) -> [TokenRecord] {
        // The same strictness as request bodies: a key given twice is refused, not resolved silently.
        if let failure = StrictJSON.check(bytes) {
            throw .invalidContents(path: path, reason: failure.description)
        }
        let stored: StoredFile
        do {
            stored = try JSONDecoder().decode(StoredFile.self, from: Data(bytes))
        } catch {
            throw .invalidContents(
                path: path,
                reason: #"expected {"tokens": [{"name", "role", "createdAt", "salt", "hash"}, ...]}"#)
        }
        var names: Set<String> = []
        var records: [TokenRecord] = []
        for token in stored.tokens {
            guard isValidName(token.name) else {
                throw .invalidContents(path: path, reason: "'\(token.name)' is not a valid token name")
            }
            guard names.insert(token.name).inserted else {
                throw .duplicateName(path: path, name: token.name)
            }
            guard let role = Role(rawValue: token.role) else {
                throw .invalidContents(
                    path: path,
                    reason: "the token '\(token.name)' has the unknown role '\(token.role)' "
                        + "(roles: viewer, operator, admin)")
            }
            let salt = try hexField(token.salt, count: TokenCrypto.saltLength, of: "salt", token.name, path)
            let hash = try hexField(token.hash, count: TokenCrypto.digestLength, of: "hash", token.name, path)
            records.append(
                TokenRecord(name: token.name, role: role, createdAt: token.createdAt, salt: salt, hash: hash))
        }
        return records
    }

    private static func hexField(_ hex: String, count: Int, of field: String, _ name: String, _ path: String)
        throws(TokenFileError) -> [UInt8]
    {
        guard let bytes = TokenCrypto.bytes(hex: hex), bytes.count == count else {
            throw .invalidContents(
                path: path, reason: "the \(field) of '\(name)' is not \(2 * count) lowercase hex digits")
        }
        return bytes
    }

    // MARK: - Files

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Creates missing folders private to the owner; existing ones are left as they are.
    private static func createFolders(_ folder: String) throws(TokenFileError) {
        var current = folder.hasPrefix("/") ? "" : "."
        for component in folder.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw .system(path: current, operation: "create the folder", errno: errno)
            }
        }
    }

    /// Runs `body` holding an exclusive lock on the file's folder, so that two `graced token`
    /// commands at once cannot both read the old file and one lose the other's change.
    private static func whileLocked<Result>(
        _ path: String, _ body: (_ folder: Int32) throws(TokenFileError) -> Result
    ) throws(TokenFileError) -> Result {
        let folderPath = folder(of: path)
        let descriptor = open(folderPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .system(path: folderPath, operation: "open the folder", errno: errno)
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .system(path: folderPath, operation: "lock", errno: errno) }
        }
        return try body(descriptor)
    }

    /// Replaces the file in one step: a reader sees the old contents or the new, never a part.
    private static func replace(_ path: String, with bytes: [UInt8], folder descriptor: Int32)
        throws(TokenFileError)
    {
        let folderPath = folder(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let temporary =
            folderPath + "/." + base + "." + TokenCrypto.hex((0..<8).map { _ in UInt8.random(in: 0...255) })
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .system(path: temporary, operation: "create", errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do throws(TokenFileError) {
            try writeAll(fd, bytes, path: temporary)
            // The umask can only narrow 0600, but say it outright rather than depend on that.
            guard fchmod(fd, 0o600) == 0 else {
                throw .system(path: temporary, operation: "chmod", errno: errno)
            }
            guard fsync(fd) == 0 else { throw .system(path: temporary, operation: "sync", errno: errno) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw .system(path: temporary, operation: "close", errno: errno) }
        guard rename(temporary, path) == 0 else {
            throw .system(path: path, operation: "replace", errno: errno)
        }
        renamed = true
        // The rename itself lives in the folder; without this a crash could bring back the old file.
        guard fsync(descriptor) == 0 else { throw .system(path: folderPath, operation: "sync", errno: errno) }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(TokenFileError) {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + done, raw.count - done) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(path: path, operation: "write", errno: errno)
            }
            done += count
        }
    }

    private static func readAll(_ fd: Int32, path: String) throws(TokenFileError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress, raw.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(path: path, operation: "read", errno: errno)
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= maximumSize else {
                throw .invalidContents(path: path, reason: "it is larger than \(maximumSize >> 20) MiB")
            }
        }
    }
}
