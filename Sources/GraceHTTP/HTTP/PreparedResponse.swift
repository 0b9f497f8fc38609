import CHTTP
import Synchronization

/// A libmicrohttpd response built once and queued on every connection that asks for it: the body
/// is lent to MHD (not copied), its headers added once, and each request only takes a reference
/// (MHD counts them under its own lock, so any thread may queue it). A snapshot's GET bodies are
/// prepared when the snapshot is built, so `GET /gpus` costs no copy and no allocation of the body.
///
/// MHD adds the per-connection headers (`Date`, `Content-Length`, `Connection`) itself when it
/// sends, so one response serves keep-alive and closing connections alike.
package final class PreparedResponse: @unchecked Sendable {
    /// Owned here (one reference); MHD releases the body once the last connection sending it is done.
    private let pointer: OpaquePointer
    let status: Int

    /// Holds the body's bytes for as long as MHD may send them: a snapshot's bodies are megabytes
    /// at fleet scale, and a copy in MHD beside the snapshot's doubled them. The array is never
    /// mutated while held, so its storage stays where MHD was told it is; MHD calls `release` when
    /// it destroys the response, which may be after the snapshot (a slow client still reading).
    private final class LentBody {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
    }

    /// Nil when MHD cannot allocate the response.
    package init?(status: Int, headers: [(String, String)], body: [UInt8]) {
        let made: OpaquePointer?
        if body.isEmpty {
            made = grace_mhd_response_copying(0, nil)
        } else {
            let owner = Unmanaged.passRetained(LentBody(body))
            let base = owner.takeUnretainedValue().bytes.withUnsafeBytes { $0.baseAddress }
            made = grace_mhd_response_borrowing(
                body.count, base, { raw in raw.map { Unmanaged<LentBody>.fromOpaque($0).release() } },
                owner.toOpaque())
            if made == nil { owner.release() }
        }
        guard let created = made else { return nil }
        for (name, value) in headers where !HTTPHeaders.namesMatch(name, "Content-Length") {
            guard grace_mhd_add_header(created, name, value) else {
                MHD_destroy_response(created)
                return nil
            }
        }
        pointer = created
        self.status = status
    }

    deinit {
        MHD_destroy_response(pointer)
    }

    func queue(on connection: OpaquePointer) -> Bool {
        grace_mhd_queue(connection, UInt32(status), pointer)
    }
}

/// A `PreparedResponse` made by the first caller that needs it and shared by the rest.
package final class PreparedOnce: Sendable {
    private let made = Mutex<PreparedResponse?>(nil)

    package init() {}

    package func get(_ make: () -> PreparedResponse?) -> PreparedResponse? {
        made.withLock { made in
            if let made { return made }
            made = make()
            return made
        }
    }
}
