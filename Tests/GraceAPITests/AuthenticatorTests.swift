import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// Identifying callers again and again: the same work each time, whatever came before (issue 17: a
/// token lookup kept as a closure in a `Mutex` was wrapped once more at every request, until graced
/// ran out of stack).
@Suite struct AuthenticatorTests {
    static func verifier() throws -> (TokenVerifier, token: String) {
        let folder = TokenFileTests.Folder()
        let path = folder.file("tokens")
        let token = try TokenFile.create(path: path, name: "dashboard", role: .viewer)
        return (TokenVerifier(records: try TokenFile.load(path: path)), token)
    }

    static func bearer(_ token: String) -> HTTPHeaders {
        HTTPHeaders([(name: "Authorization", value: "Bearer \(token)")])
    }

    @Test(
        "twenty thousand wrong tokens leave the verifier in force the one installed, and the right token still works"
    )
    func wrongTokensChangeNothing() throws {
        let (verifier, token) = try Self.verifier()
        let authenticator = Authenticator(tokens: verifier)
        let wrong = Self.bearer("grace_" + String(repeating: "0", count: 64))
        let connection = Authenticator.ConnectionIdentity.tcp(
            clientAddress: "127.0.0.1", certificate: .none, noAuth: false)
        var refused = 0
        for _ in 0..<20_000 {
            if case .failure = authenticator.identify(wrong, connection: connection) { refused += 1 }
        }
        #expect(refused == 20_000)
        #expect(authenticator.tokenVerifier === verifier)
        let caller = try authenticator.identify(Self.bearer(token), connection: connection).get()
        #expect(caller.name == "token:dashboard" && caller.role == .viewer && caller.source == .token)
    }

    /// The pattern behind the bug, checked where graced keeps callbacks: the stack depth at which a
    /// callback runs is the same at its ten-thousandth call as at its first. A closure stored bare as
    /// a `Mutex`'s value ran two frames deeper at every call.
    @Test("a callback kept under a lock runs at the same stack depth after ten thousand calls")
    func observerKeepsItsDepth() {
        let depths = Mutex<[Int]>([])
        let slot = Mutex<Observer<Int>?>(nil)
        slot.withLock {
            $0 = Observer { _ in
                var marker = 0
                let address = withUnsafeMutablePointer(to: &marker) { Int(bitPattern: $0) }
                depths.withLock { $0.append(address) }
            }
        }
        func callOnce() {
            slot.withLock { $0 }?.notify(0)
        }
        for _ in 0..<10_000 { callOnce() }
        let seen = depths.withLock { $0 }
        #expect(seen.count == 10_000)
        // Every call runs from the same frame of this function, so the callback's frame is at the same
        // address each time; a growing chain of thunks would put it 320 KB or more further down.
        #expect(abs(seen[seen.count - 1] - seen[0]) < 4096)
    }
}
