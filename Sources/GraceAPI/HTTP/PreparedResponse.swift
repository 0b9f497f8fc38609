import CHTTP
import Synchronization

/// A libmicrohttpd response built once and queued on every connection that asks for it: the body
/// is copied into MHD once, its headers added once, and each request only takes a reference
/// (MHD counts them under its own lock, so any thread may queue it). A snapshot's GET bodies are
/// prepared when the snapshot is built, so `GET /gpus` costs no copy and no allocation of the body.
///
/// MHD adds the per-connection headers (`Date`, `Content-Length`, `Connection`) itself when it
/// sends, so one response serves keep-alive and closing connections alike.
final class PreparedResponse: @unchecked Sendable {
    /// Owned here (one reference); MHD frees the copy once the last connection sending it is done.
    private let pointer: OpaquePointer
    let status: Int

    /// Nil when MHD cannot allocate the response.
    init?(status: Int, headers: [(String, String)], body: [UInt8]) {
        guard let created = body.withUnsafeBytes({ grace_mhd_response_copying($0.count, $0.baseAddress) })
        else {
            return nil
        }
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
