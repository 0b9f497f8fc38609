import CHTTP
import Synchronization

/// One streaming response on one MHD connection: MHD's content reader pulls from the source; when
/// the source has nothing, the reader suspends the connection and the source's wake resumes it.
///
/// Races, and why they cannot bite: suspend and resume are both called under this object's lock,
/// so a resume always follows its suspend, and only the waker that flips `suspended` resumes. A
/// wake that comes while the reader is between "nothing to send" and suspending sets
/// `wakePending`, and the reader then returns 0 without suspending (MHD calls it again). A
/// suspended connection is never closed by MHD (it does not watch it), so the pointer is valid
/// whenever `suspended` holds; once MHD releases the response (`finished`), wakes do nothing.
///
/// `@unchecked Sendable`: `connection` is written once, before MHD can call the reader.
package final class StreamConnection: @unchecked Sendable {
    let source: any StreamSource
    /// Who opened it: a reload that revokes its token ends it.
    let caller: Caller
    private var connection: OpaquePointer?
    private unowned let registry: StreamRegistry

    private struct State {
        var suspended = false
        var wakePending = false
        var finished = false
    }

    private let state = Mutex(State())

    init(source: any StreamSource, caller: Caller, registry: StreamRegistry) {
        self.source = source
        self.caller = caller
        self.registry = registry
    }

    /// Queues the stream's head and starts pulling; false if MHD refused (nothing stays registered).
    func queue(
        status: Int, headers: [(String, String)], on connection: OpaquePointer, log: ((String) -> Void)?
    )
        -> Bool
    {
        self.connection = connection
        // MHD holds the +1 until the free callback.
        let cls = Unmanaged.passRetained(self).toOpaque()
        guard let response = grace_mhd_response_stream(16 << 10, Self.reader, cls, Self.released) else {
            Unmanaged<StreamConnection>.fromOpaque(cls).release()
            registry.remove(self)
            source.finish()
            return false
        }
        defer { MHD_destroy_response(response) }
        for (name, value) in headers where !HTTPHeaders.namesMatch(name, "Content-Length") {
            if !grace_mhd_add_header(response, name, value) {
                log?("dropped response header \(name): MHD refused it")
            }
        }
        source.setWake { [weak self] in self?.wake() }
        // On failure MHD_destroy_response drops the last reference and `released` cleans up.
        return grace_mhd_queue(connection, UInt32(status), response)
    }

    private func wake() {
        state.withLock { state in
            guard !state.finished else { return }
            if state.suspended {
                state.suspended = false
                MHD_resume_connection(connection)
            } else {
                state.wakePending = true
            }
        }
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch source.read(into: buffer) {
        case .bytes(let count):
            return count
        case .end:
            return grace_mhd_end_of_stream()
        case .waiting:
            state.withLock { state in
                if state.wakePending {
                    state.wakePending = false
                } else {
                    state.suspended = true
                    MHD_suspend_connection(connection)
                }
            }
            return 0
        }
    }

    private func release() {
        state.withLock { $0.finished = true }
        registry.remove(self)
        source.finish()
    }

    private static let reader: MHD_ContentReaderCallback = { cls, _, buffer, max in
        guard let cls, let buffer else { return grace_mhd_end_of_stream() }
        let stream = Unmanaged<StreamConnection>.fromOpaque(cls).takeUnretainedValue()
        return stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max))
    }

    private static let released: MHD_ContentReaderFreeCallback = { cls in
        guard let cls else { return }
        let stream = Unmanaged<StreamConnection>.fromOpaque(cls)
        stream.takeUnretainedValue().release()
        stream.release()
    }
}
