import Synchronization

/// Clients waiting for a job to end (`GET /jobs/{id}?wait=`): each waits in a Swift task (the
/// connection suspended, no libmicrohttpd thread held) until the engine says the job ended, the
/// wait's time is up, or the task is cancelled (the server stopping).
final class JobWaiters: Sendable {
    private struct Waiter {
        var job: String
        var continuation: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var next: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.waiters.count } }

    /// Returns when `isDone()` holds (checked first, under the same lock `notify` takes, so no end
    /// is missed), when `notify(job)` is called, after `timeout`, or when the task is cancelled.
    func wait(for job: String, timeout: Duration, isDone: () -> Bool) async {
        let token = state.withLock { state -> UInt64? in
            if isDone() { return nil }
            state.next += 1
            state.waiters[state.next] = Waiter(job: job, continuation: nil)
            return state.next
        }
        guard let token else { return }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(token)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    // Resumed (ended, timed out or cancelled) before the continuation existed.
                    guard state.waiters[token] != nil else { return true }
                    state.waiters[token]?.continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resume(token)
        }
        timer.cancel()
    }

    /// The job ended: wake everyone waiting for it.
    func notify(_ job: String) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>?] in
            let tokens = state.waiters.filter { $0.value.job == job }.map(\.key)
            return tokens.map { token -> CheckedContinuation<Void, Never>? in
                state.waiters.removeValue(forKey: token)?.continuation
            }
        }
        for continuation in woken { continuation?.resume() }
    }

    private func resume(_ token: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.waiters.removeValue(forKey: token)?.continuation
        }
        continuation?.resume()
    }
}
