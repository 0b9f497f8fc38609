import CHTTP
import Synchronization

/// A libmicrohttpd response built once and queued on every connection that asks for it: the body
/// is copied into MHD once, its headers added once, and each request only takes a reference
/// (MHD counts them under its own lock, so any thread may queue it). A snapshot's GET bodies are
/// prepared on their first request, so `GET /gpus` costs no copy and no allocation of the body.
///
/// A body of `fileThreshold` bytes or more lives in a sealed memfd that MHD sends with sendfile(2)
/// on plain connections, as nginx sends a static file: no copy from user memory per request.
/// MHD closes the memfd when the response's last reference goes, so a snapshot replaced while a
/// slow client still reads the old body leaves that client's bytes intact. TLS connections get the
/// same answer from memory (made on the first TLS request), since MHD cannot sendfile through TLS.
///
/// MHD adds the per-connection headers (`Date`, `Content-Length`, `Connection`) itself when it
/// sends, so one response serves keep-alive and closing connections alike.
final class PreparedResponse: @unchecked Sendable {
    /// Below this a body is sent from memory: sendfile costs a cork and a second system call,
    /// which only pays off once the copy it saves is large.
    static let fileThreshold = 4096
    /// How many bodies may hold a memfd at once (each is a descriptor, and at 4096 GPUs there are
    /// thousands of bodies); past it, bodies are sent from memory. A memfd outlives its
    /// `PreparedResponse` only while a connection still sends it, one at most per connection.
    final class FileBudget: Sendable {
        let limit: Int
        private let inUse = Atomic<Int>(0)

        init(limit: Int) {
            self.limit = limit
        }

        func reserve() -> Bool {
            if inUse.add(1, ordering: .relaxed).newValue <= limit { return true }
            release()
            return false
        }

        func release() {
            inUse.subtract(1, ordering: .relaxed)
        }
    }

    static let files = FileBudget(limit: 64)
    private let budget: FileBudget

    /// Owned here (one reference); MHD frees it once the last connection sending it is done.
    private let pointer: OpaquePointer
    /// Whether `pointer` sends from a memfd; TLS connections then get `memory`.
    let fromFile: Bool
    private let headers: [(String, String)]
    private let body: [UInt8]
    /// The memory copy for TLS connections, made on the first.
    private let memory = Mutex<OpaquePointer?>(nil)
    let status: Int

    /// Nil when MHD cannot allocate the response.
    init?(status: Int, headers: [(String, String)], body: [UInt8], files: FileBudget = PreparedResponse.files)
    {
        var fromFile = false
        var created: OpaquePointer?
        if body.count >= Self.fileThreshold, files.reserve() {
            created = body.withUnsafeBytes { grace_mhd_response_sealed($0.count, $0.baseAddress) }
            fromFile = created != nil
            if !fromFile { files.release() }
        }
        if created == nil {
            created = Self.memoryResponse(body)
        }
        guard let created, Self.add(headers, to: created) else {
            created.map { MHD_destroy_response($0) }
            if fromFile { files.release() }
            return nil
        }
        budget = files
        pointer = created
        self.fromFile = fromFile
        self.status = status
        // Kept only to make the TLS twin; both share the snapshot's storage (no copy).
        self.headers = fromFile ? headers : []
        self.body = fromFile ? body : []
    }

    deinit {
        MHD_destroy_response(pointer)
        memory.withLock { $0.map { MHD_destroy_response($0) } }
        if fromFile { budget.release() }
    }

    func queue(on connection: OpaquePointer) -> Bool {
        guard fromFile, grace_mhd_connection_is_tls(connection) else {
            return grace_mhd_queue(connection, UInt32(status), pointer)
        }
        let twin = memory.withLock { memory -> OpaquePointer? in
            if let memory { return memory }
            guard let made = Self.memoryResponse(body) else { return nil }
            guard Self.add(headers, to: made) else {
                MHD_destroy_response(made)
                return nil
            }
            memory = made
            return made
        }
        guard let twin else { return false }
        return grace_mhd_queue(connection, UInt32(status), twin)
    }

    private static func memoryResponse(_ body: [UInt8]) -> OpaquePointer? {
        body.withUnsafeBytes { grace_mhd_response_copying($0.count, $0.baseAddress) }
    }

    private static func add(_ headers: [(String, String)], to response: OpaquePointer) -> Bool {
        headers.allSatisfy { name, value in
            HTTPHeaders.namesMatch(name, "Content-Length") || grace_mhd_add_header(response, name, value)
        }
    }
}

/// A `PreparedResponse` made by the first caller that needs it and shared by the rest.
final class PreparedOnce: Sendable {
    private let made = Mutex<PreparedResponse?>(nil)

    func get(_ make: () -> PreparedResponse?) -> PreparedResponse? {
        made.withLock { made in
            if let made { return made }
            made = make()
            return made
        }
    }
}
