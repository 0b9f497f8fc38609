import Passthrough

extension JobEngine {
    enum WriteOutcome: Equatable {
        case done
        case failed(KernelError)
        /// The kernel has not returned by the deadline: the device is marked wedged and the job's
        /// pending restores are dropped (a write to that device would hang as well).
        case stuck
        /// Cancelled before (or between) attempts; a write in flight is never abandoned for this.
        case cancelled(String)
        case deadlinePassed
    }

    /// Performs a kernel write for a running job: through the watchdog, retrying EBUSY and EAGAIN with
    /// capped jittered backoff inside the deadline, recording every attempt when asked to.
    func write(_ write: SysfsWrite, for id: String, recordAttempts: Bool) -> WriteOutcome {
        guard let live = live(id) else { return .cancelled("job gone") }
        var attempt = 0
        while true {
            if let reason = live.token.reason { return .cancelled(reason) }
            if ContinuousClock.now >= live.deadline { return .deadlinePassed }
            attempt += 1
            let startedAtMs = Timestamp.nowMs()
            let result = executor.perform(write, deadline: live.deadline)
            switch result {
            case .done:
                if recordAttempts {
                    update(id) {
                        $0.attempts.append(.init(atMs: startedAtMs, errno: nil, message: "\(write): ok"))
                    }
                }
                return .done
            case .stuck:
                if recordAttempts {
                    update(id) {
                        $0.attempts.append(
                            .init(
                                atMs: startedAtMs, errno: nil,
                                message: "\(write): still blocked in the kernel at the deadline"))
                    }
                }
                dropRestores(for: id)
                if let device = write.device {
                    wedged.insert(device)
                    inventory.setState(device.description, .wedged)
                }
                return .stuck
            case .failed(let error):
                if recordAttempts {
                    update(id) {
                        $0.attempts.append(
                            .init(atMs: startedAtMs, errno: error.code, message: "\(write): \(error.message)")
                        )
                    }
                }
                guard RetryPolicy.isRetryable(error) else { return .failed(error) }
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
            finish(id, .timedOut, Self.wedgedFailure(write))
        case .failed(let error):
            finish(id, .failed, Self.kernelFailure(error, during: what))
        case .cancelled(let reason):
            finish(id, .cancelled, Self.cancelledFailure(reason))
        case .deadlinePassed:
            finish(id, .timedOut, Self.deadlineFailure("The deadline passed during the \(what)."))
        }
    }

    /// Best-effort writes that put things back (power control, reset_method, a failed bind): short
    /// deadline, never cancelled, failures noted on the job.
    func restore(_ writes: [SysfsWrite], for id: String) {
        for write in writes {
            if let device = write.device, wedged.contains(device) {
                update(id) { $0.note("not restored (device wedged): \(write)") }
                continue
            }
            switch executor.perform(write, deadline: .now + .seconds(5)) {
            case .done: break
            case .failed(let error): update(id) { $0.note("could not restore \(write): \(error.name)") }
            case .stuck: update(id) { $0.note("restoring \(write) is still blocked in the kernel") }
            }
        }
    }

    /// The job's failure for a kernel error, with the errno and what to do about it.
    static func kernelFailure(_ error: KernelError, during what: String) -> Job.Failure {
        let resolution =
            switch error.code {
            case KernelError.enodev:
                "The device is gone from the bus: check `GET /gpus` (state missing), then the host's logs; a rescan or reboot may bring it back."
            case KernelError.enotty:
                "The kernel could not use that method or the device did not come back: try another method from resetMethods, and check the host's logs."
            case KernelError.einval:
                "The kernel refused the request as invalid: check the method against resetMethods and the device's power state."
            case KernelError.ebusy, KernelError.eagain:
                "The device stayed busy until the deadline: stop what is using it, or retry with a longer deadlineSeconds."
            default:
                "See the errno and the host's kernel log."
            }
        return failure(
            "kernel-error", "The kernel refused the \(what)", status: 502,
            detail: "\(what) failed with \(error.name) (\(error.message)) writing \(error.path).",
            resolution: resolution, errno: error.code)
    }

    static func deadlineFailure(_ detail: String) -> Job.Failure {
        failure(
            "deadline", "Deadline passed", status: 504, detail: detail,
            resolution:
                "Retry with a longer deadlineSeconds if the device is known to be slow; check the host's logs otherwise.",
            errno: KernelError.etime)
    }

    static func wedgedFailure(_ write: SysfsWrite) -> Job.Failure {
        failure(
            "wedged", "Kernel write stuck", status: 504,
            detail: "\(write) had not returned at the deadline; the kernel still holds the device.",
            resolution:
                "The device is wedged until the kernel returns: check the host's kernel log (a hung reset or a user holding the device); a reboot may be needed."
        )
    }
}
