import GraceTestSupport
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Bearer tokens: the file that stores their hashes, the verifier, and `graced token`.
@Suite struct TokenFileTests {
    /// A fresh folder under /tmp, removed with what the tests put in it.
    final class Folder: Sendable {
        let path: String

        init() {
            path = makeTemporaryFolder("/tmp/grace-tokens-XXXXXX")
        }

        func file(_ name: String) -> String { path + "/" + name }

        deinit { Self.remove(path) }

        private static func remove(_ path: String) {
            var status = stat()
            guard lstat(path, &status) == 0 else { return }
            guard status.st_mode & S_IFMT == S_IFDIR else {
                unlink(path)
                return
            }
            names(in: path).forEach { remove(path + "/" + $0) }
            rmdir(path)
        }

        static func names(in path: String) -> [String] {
            guard let directory = opendir(path) else { return [] }
            defer { closedir(directory) }
            var names: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            return names
        }
    }

    static func write(_ text: String, to path: String, mode: mode_t = 0o600) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        precondition(fd >= 0, "cannot create \(path): errno \(errno)")
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count)
        close(fd)
        chmod(path, mode)
    }

    static func mode(_ path: String) -> mode_t {
        var status = stat()
        precondition(stat(path, &status) == 0)
        return status.st_mode & 0o7777
    }

    // MARK: - Create, list, revoke

    @Test func createListRevokeRoundTrip() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        _ = try TokenFile.create(path: path, name: "alice", role: .admin, now: 1_796_082_666_123)
        _ = try TokenFile.create(path: path, name: "ci.bot@example-1", role: .operator)
        let listed = try TokenFile.list(path: path)
        #expect(listed.map(\.name) == ["alice", "ci.bot@example-1"])
        #expect(listed.map(\.role) == [.admin, .operator])
        #expect(listed[0].createdAt == "2026-11-30T23:51:06.123Z")

        try TokenFile.revoke(path: path, name: "alice")
        #expect(try TokenFile.list(path: path).map(\.name) == ["ci.bot@example-1"])
        try TokenFile.revoke(path: path, name: "ci.bot@example-1")
        #expect(try TokenFile.list(path: path).isEmpty)
        #expect(throws: TokenFileError.unknownName(path: path, name: "alice")) {
            try TokenFile.revoke(path: path, name: "alice")
        }
    }

    @Test func tokensHaveTheDocumentedForm() throws {
        let folder = Folder()
        let token = try TokenFile.create(path: folder.file("tokens"), name: "a", role: .viewer)
        #expect(token.hasPrefix("grace_") && token.utf8.count == 70)
        #expect(token.dropFirst(6).allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func theDigestIsSHA256OfTheSaltThenTheSecret() throws {
        // FIPS 180-2's example: SHA-256("abc").
        let digest = try TokenCrypto.digest(salt: Array("a".utf8), secret: Array("bc".utf8))
        #expect(
            TokenCrypto.hex(digest) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(TokenCrypto.bytes(hex: TokenCrypto.hex(digest)) == digest)
        #expect(TokenCrypto.bytes(hex: "0g") == nil && TokenCrypto.bytes(hex: "abc") == nil)
    }

    @Test func theSecretVerifiesWithItsRoleAndNothingNearItDoes() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        let viewer = try TokenFile.create(path: path, name: "viewer1", role: .viewer)
        let admin = try TokenFile.create(path: path, name: "admin1", role: .admin)
        let verifier = TokenVerifier(records: try TokenFile.load(path: path))
        #expect(verifier.identify(viewer)?.name == "viewer1")
        #expect(verifier.identify(viewer)?.role == .viewer)
        #expect(verifier.identify(admin)?.name == "admin1")
        #expect(verifier.identify(admin)?.role == .admin)

        let characters = Array(admin)
        for index in [0, 5, 6, 37, characters.count - 1] {
            var changed = characters
            changed[index] = changed[index] == "0" ? "1" : "0"
            #expect(verifier.identify(String(changed)) == nil, "changed at \(index)")
        }
        for presented in [
            "", "grace_", admin.uppercased(), "Bearer " + admin, admin + "0", String(admin.dropLast()),
            String(admin.dropFirst(6)), admin + "\n",
        ] {
            #expect(verifier.identify(presented) == nil, "\(presented.count) characters")
        }
        #expect(TokenVerifier(records: []).identify(admin) == nil)
    }

    @Test func aRevokedTokenNoLongerVerifies() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        let kept = try TokenFile.create(path: path, name: "kept", role: .operator)
        let revoked = try TokenFile.create(path: path, name: "revoked", role: .admin)
        try TokenFile.revoke(path: path, name: "revoked")
        let verifier = TokenVerifier(records: try TokenFile.load(path: path))
        #expect(verifier.identify(revoked) == nil)
        #expect(verifier.identify(kept)?.role == .operator)
    }

    @Test func theFileIsPrivateAndHoldsNoPartOfTheToken() throws {
        let folder = Folder()
        let path = folder.file("etc/graced/tokens")
        let token = try TokenFile.create(path: path, name: "alice", role: .admin)
        #expect(Self.mode(path) == 0o600)
        #expect(Self.mode(folder.file("etc")) == 0o700)
        #expect(Self.mode(folder.file("etc/graced")) == 0o700)

        let contents = ChildProcess.read(path)
        let hex = Array(token.dropFirst(6))
        #expect(!contents.contains(token))
        for start in 0...(hex.count - 16) {
            #expect(!contents.contains(String(hex[start..<start + 16])), "hex from \(start)")
        }
        // The temporary file of the atomic write is gone.
        #expect(Folder.names(in: folder.file("etc/graced")) == ["tokens"])
    }

    @Test func theFileIsSortedPrettyJSON() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        _ = try TokenFile.create(path: path, name: "alice", role: .admin, now: 0)
        let contents = ChildProcess.read(path)
        let keys = contents.split(separator: "\n").compactMap { line in
            line.split(separator: "\"", omittingEmptySubsequences: false).dropFirst().first.map(String.init)
        }
        #expect(keys == ["tokens", "createdAt", "hash", "name", "role", "salt"])
        #expect(contents.contains("\n  ") && contents.contains("1970-01-01T00:00:00.000Z"))
        #expect(StrictJSON.check(Array(contents.utf8)) == nil)
    }

    @Test func twoTokensGetDifferentSalts() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        let first = try TokenFile.create(path: path, name: "one", role: .viewer)
        let second = try TokenFile.create(path: path, name: "two", role: .viewer)
        #expect(first != second)
        let records = try TokenFile.load(path: path)
        #expect(records[0].salt != records[1].salt)
        #expect(records[0].hash != records[1].hash)
        #expect(records.allSatisfy { $0.salt.count == 16 && $0.hash.count == 32 })
    }

    @Test func createRefusesADuplicateNameAndLeavesTheFile() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        let token = try TokenFile.create(path: path, name: "alice", role: .viewer)
        let before = ChildProcess.read(path)
        #expect(throws: TokenFileError.duplicateName(path: path, name: "alice")) {
            try TokenFile.create(path: path, name: "alice", role: .admin)
        }
        #expect(ChildProcess.read(path) == before)
        #expect(TokenVerifier(records: try TokenFile.load(path: path)).identify(token)?.role == .viewer)
    }

    @Test(arguments: ["", "a b", "tab\t", "é", "slash/", "colon:", String(repeating: "x", count: 65)])
    func createRefusesAnInvalidName(_ name: String) {
        let folder = Folder()
        #expect(throws: TokenFileError.invalidName(name)) {
            try TokenFile.create(path: folder.file("tokens"), name: name, role: .viewer)
        }
        #expect(access(folder.file("tokens"), F_OK) != 0)
    }

    @Test func namesOfSixtyFourAllowedCharactersAreValid() {
        #expect(TokenFile.isValidName(String(repeating: "x", count: 64)))
        #expect(TokenFile.isValidName("A-Z.a_z@0-9"))
    }

    // MARK: - Refusals on load

    @Test func loadReportsAMissingFileApart() {
        let folder = Folder()
        #expect(throws: TokenFileError.missing(path: folder.file("tokens"))) {
            try TokenFile.load(path: folder.file("tokens"))
        }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o620, 0o602, 0o700 as mode_t])
    func loadRefusesAFileOthersMayUse(_ mode: mode_t) throws {
        let folder = Folder()
        let path = folder.file("tokens")
        _ = try TokenFile.create(path: path, name: "alice", role: .admin)
        chmod(path, mode)
        let expectedMode = UInt32(mode)
        if mode & 0o077 == 0 {
            #expect(try TokenFile.load(path: path).count == 1)
        } else {
            #expect(throws: TokenFileError.exposed(path: path, mode: expectedMode)) {
                try TokenFile.load(path: path)
            }
            #expect(
                TokenFileError.exposed(path: path, mode: expectedMode).description.contains(
                    "chmod 600 \(path)"))
        }
    }

    @Test func loadRefusesASymlink() throws {
        let folder = Folder()
        let target = folder.file("real")
        _ = try TokenFile.create(path: target, name: "alice", role: .admin)
        let link = folder.file("tokens")
        #expect(symlink(target, link) == 0)
        #expect(throws: TokenFileError.symlink(path: link)) { try TokenFile.load(path: link) }
        #expect(symlink(folder.file("nowhere"), folder.file("dangling")) == 0)
        #expect(throws: TokenFileError.symlink(path: folder.file("dangling"))) {
            try TokenFile.load(path: folder.file("dangling"))
        }
    }

    @Test func loadRefusesAFolder() {
        let folder = Folder()
        mkdir(folder.file("tokens"), 0o700)
        #expect(throws: TokenFileError.notRegularFile(path: folder.file("tokens"))) {
            try TokenFile.load(path: folder.file("tokens"))
        }
    }

    @Test(.enabled(if: geteuid() == 0, "only root can give a file away"))
    func loadRefusesAFileOwnedBySomeoneElse() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        _ = try TokenFile.create(path: path, name: "alice", role: .admin)
        #expect(chown(path, 65534, 65534) == 0)
        #expect(throws: TokenFileError.wrongOwner(path: path, owner: 65534, expected: 0)) {
            try TokenFile.load(path: path)
        }
        #expect(
            TokenFileError.wrongOwner(path: path, owner: 65534, expected: 0).description.contains(
                "chown root"))
    }

    @Test func loadRefusesADuplicateName() {
        let folder = Folder()
        let path = folder.file("tokens")
        Self.write(tokenFile(entry("alice"), entry("bob"), entry("alice")), to: path)
        #expect(throws: TokenFileError.duplicateName(path: path, name: "alice")) {
            try TokenFile.load(path: path)
        }
    }

    @Test func loadAcceptsAWellFormedFile() throws {
        let folder = Folder()
        let path = folder.file("tokens")
        Self.write(tokenFile(entry("alice", role: "admin"), entry("bob")), to: path)
        let records = try TokenFile.load(path: path)
        #expect(records.map(\.name) == ["alice", "bob"])
        #expect(records[0].salt == [UInt8](repeating: 0xab, count: 16))
        #expect(records[0].createdAt == "2026-11-29T23:51:06.123Z")
    }

    @Test(arguments: [
        ("an unknown role", tokenFile(entry("alice", role: "root")), "unknown role 'root'"),
        ("a capitalised role", tokenFile(entry("alice", role: "Admin")), "unknown role 'Admin'"),
        ("a short salt", tokenFile(entry("alice", salt: "abab")), "salt"),
        ("an uppercase salt", tokenFile(entry("alice", salt: sampleSalt.uppercased())), "salt"),
        ("a non-hex hash", tokenFile(entry("alice", hash: String(repeating: "zz", count: 32))), "hash"),
        ("an invalid name", tokenFile(entry("a b")), "'a b'"),
        ("a missing field", #"{"tokens": [{"name": "alice", "role": "admin"}]}"#, "expected"),
        ("no tokens key", #"{"token": []}"#, "expected"),
        ("a key twice", #"{"tokens": [], "tokens": []}"#, "appears twice"),
        ("not JSON", "tokens: []", "invalid JSON"),
        ("trailing garbage", tokenFile() + " x", "invalid JSON"),
        ("an empty file", "", "invalid JSON"),
    ])
    func loadRefusesInvalidContents(_ what: String, _ contents: String, _ mention: String) {
        let folder = Folder()
        let path = folder.file("tokens")
        Self.write(contents, to: path)
        do {
            _ = try TokenFile.load(path: path)
            Issue.record("\(what) was accepted")
        } catch {
            guard case .invalidContents(_, let reason) = error else {
                Issue.record("\(what): \(error)")
                return
            }
            #expect(reason.contains(mention), "\(what): \(reason)")
        }
    }

    // MARK: - graced token

    /// Runs a binary with stdout and stderr kept apart, as `TOKEN=$(...)` in a shell does.
    static func run(_ arguments: [String], in folder: String) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let out = folder + "/stdout-\(suffix)"
        let err = folder + "/stderr-\(suffix)"
        let child = try ChildProcess.spawn(arguments, stdout: out, stderr: err)
        let status = ChildProcess.wait(child)
        return (status, ChildProcess.read(out), ChildProcess.read(err))
    }

    @Test func gracedTokenCreatePrintsOnlyTheTokenAndListShowsIt() async throws {
        let folder = Folder()
        let path = folder.file("graced/tokens")
        // Only strings go to the threads that run the binary, so the folder goes away with the test.
        let output = folder.path
        let graced = ChildProcess.binary("graced")
        let created = try await offPool {
            try Self.run(
                [graced, "token", "create", "--tokens", path, "--name", "ci", "--role", "operator"],
                in: output)
        }
        #expect(created.status == 0, "\(created.stderr)")
        let lines = created.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "stdout: \(created.stdout)")
        let token = String(lines[0])
        #expect(TokenCrypto.secret(fromToken: token) != nil)
        #expect(
            created.stderr
                == "stored a salted hash for ci (operator) in \(path); this token is shown only once\n")
        #expect(TokenVerifier(records: try TokenFile.load(path: path)).identify(token)?.role == .operator)

        let listed = try await offPool {
            try Self.run([graced, "token", "list", "--tokens", path], in: output)
        }
        #expect(listed.status == 0)
        let rows = listed.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 2 && rows.first == ["NAME", "ROLE", "CREATED"], "\(listed.stdout)")
        #expect(rows.last?.prefix(2) == ["ci", "operator"])
        let record = try TokenFile.load(path: path)[0]
        #expect(!listed.stdout.contains(TokenCrypto.hex(record.salt)))
        #expect(!listed.stdout.contains(TokenCrypto.hex(record.hash)))

        let again = try await offPool {
            try Self.run(
                [graced, "token", "create", "--tokens", path, "--name", "ci", "--role", "admin"], in: output)
        }
        #expect(again.status != 0 && again.stdout.isEmpty)
        #expect(again.stderr.contains("already holds a token named 'ci'"))

        let revoked = try await offPool {
            try Self.run([graced, "token", "revoke", "--tokens", path, "ci"], in: output)
        }
        #expect(revoked.status == 0, "\(revoked.stderr)")
        #expect(try TokenFile.load(path: path).isEmpty)
    }
}

/// Token files written by hand, for the refusals of `load`.
private let sampleSalt = String(repeating: "ab", count: 16)
private let sampleHash = String(repeating: "cd", count: 32)

private func entry(
    _ name: String, role: String = "viewer", salt: String = sampleSalt, hash: String = sampleHash
) -> String {
    #"{"name": "\#(name)", "role": "\#(role)", "createdAt": "2026-11-29T23:51:06.123Z", "#
        + #""salt": "\#(salt)", "hash": "\#(hash)"}"#
}

private func tokenFile(_ entries: String...) -> String {
    #"{"tokens": ["# + entries.joined(separator: ", ") + "]}"
}
