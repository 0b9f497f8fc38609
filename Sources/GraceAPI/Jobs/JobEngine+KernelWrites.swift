import GraceHTTP
import Passthrough

extension JobEngine {
    enum WriteOutcome: Equatable {
        case done
        case failed(KernelError)
        /// The kernel has not returned by the deadline: the device is wedged and the job has ended
        /// (timed out); what it owed the device is dropped, since a write to it would hang as well.
        case stuck
        /// Cancelled before (or between) attempts; a write in flight is never abandoned for this.
        case cancelled(String)
        case deadlinePassed
    }

    /// Performs a kernel write for a running job: through the watchdog, retrying EBUSY and EAGAIN with
    /// capped jittered backoff inside the deadline. With `recordAttempts`, each attempt is recorded
    /// before it is issued and completed when the kernel returns.
    func write(_ write: SysfsWrite, for id: String, recordAttempts: Bool) -> WriteOutcome {
        guard let live = live(id) else { return .cancelled("job gone") }
        var attempt = 0
        while true {
            if let reason = live.token.reason { return .cancelled(reason) }
            if ContinuousClock.now >= live.deadline { return .deadlinePassed }
            attempt += 1
            if recordAttempts {
                handle(id) { $0.writeIssued(write, atMs: Timestamp.nowMs()) }
            }
            // Written before the kernel sees the write: a daemon that dies in it leaves a record that
            // says so, and what the job owes the device.
            commitRecord(id)
            let result = executor.perform(write, deadline: live.deadline)
            switch result {
            case .done:
                if recordAttempts {
                    handle(id) { $0.writeReturned(write, error: nil, atMs: Timestamp.nowMs()) }
                }
                return .done
            case .stuck:
                handle(id) { $0.writeStuck(write, recorded: recordAttempts) }
                if let device = write.device { wedge(device, in: write, for: id) }
                return .stuck
            case .failed(let error):
                if recordAttempts {
                    handle(id) { $0.writeReturned(write, error: error, atMs: Timestamp.nowMs()) }
                }
                guard RetryPolicy.isRetryable(error) else { return .failed(error) }
                // The refusal is on disk before the job sleeps on it.
                commitRecord(id)
                let delay = configuration.retry.delay(beforeRetry: attempt)
                let wake = min(live.deadline, .now + delay)
                if live.token.sleep(for: ContinuousClock.now.duration(to: wake)) {
                    return .cancelled(live.token.reason ?? "cancelled")
                }
                if ContinuousClock.now >= live.deadline { return .failed(error) }
            }
        }
    }

    /// Ends the job for a write that did not go through (`.done` is not an ending); `what` names the
    /// operation for the messages.
    func finish(_ id: String, after outcome: WriteOutcome, of write: SysfsWrite, during what: String) {
        switch outcome {
        case .done:
            break
        case .stuck:
            finish(id, .timedOut, .wedged(write))
        case .failed(let error):
            finish(id, .failed, .kernel(error, during: what))
        case .cancelled(let reason):
            finish(id, .cancelled, .cancelled(reason))
        case .deadlinePassed:
            finish(id, .timedOut, .deadline("The deadline passed during the \(what)."))
        }
    }

    /// Best-effort writes that put things back (power control, reset_method, a failed bind): short
    /// deadline, never cancelled. Returns a note for each that did not go through.
    func restore(_ writes: [SysfsWrite]) -> [String] {
        var notes: [String] = []
        for write in writes {
            if let device = write.device, isWedged(device) {
                notes.append("not restored (device wedged): \(write)")
                continue
            }
            switch executor.perform(write, deadline: .now + .seconds(5)) {
            case .done: break
            case .failed(let error): notes.append("could not restore \(write): \(error.name)")
            case .stuck: notes.append("restoring \(write) is still blocked in the kernel")
            }
        }
        return notes
    }
}
