import Passthrough

extension JobEngine {
    /// A write the watchdog gave up on has finally returned. Its job's attempt is completed (when it
    /// returned, what the kernel said) and announced as a second `job.attempt`, whether the job is
    /// still live or long stored; the device is free again, and shown ready only once its probe says
    /// so (a reset that hung proves nothing about readiness).
    func writeReturnedLate(_ late: KernelWriteExecutor.LateReturn) {
        let write = late.write
        logger.notice("the kernel returned from \(write) after the job gave up on it")
        let error: KernelError? =
            switch late.result {
            case .failed(let error): error
            case .done, .stuck: nil
            }
        guard let device = write.device else { return }
        let wedgedBy = state.read { state -> String? in
            guard case .wedged(write, let job) = state.devices[device] else { return nil }
            return job
        }
        guard let job = wedgedBy else { return }
        completeLateAttempt(write, of: job, error: error, atMs: late.atMs)
        // The follow-up is under way before the device is free, so there is no moment when nothing
        // holds or probes it while its readiness is in doubt.
        followUps.follow(device, after: "the kernel returned from \(write)")
        // Shown as it reads (with its doubt) before it is free: whoever waits for the device to be
        // free then sees the state that follows.
        let show = state.read { state -> DeviceMachine.Show in
            guard let current = state.devices[device] else { return nil }
            return current.unstuck(from: write).show
        }
        if case .some(let shown) = show {
            inventory.setState(device.description, shown, because: "the kernel returned from \(write)")
        }
        state.withLock { state in
            guard let current = state.devices[device] else { return }
            state.devices[device] = current.unstuck(from: write).next
        }
    }

    /// The attempt left "still blocked in the kernel" gets its return; the job's newest version (live,
    /// on its way to the disk, or stored) is saved again and the attempt published.
    private func completeLateAttempt(_ write: SysfsWrite, of id: String, error: KernelError?, atMs: Int64) {
        if live(id) != nil {
            handle(id) { $0.lateWriteReturned(write, error: error, atMs: atMs) }
            return
        }
        guard var job = job(id), let index = Job.stuckAttempt(of: write, in: job) else { return }
        job.attempts[index].complete(write, error: error, atMs: atMs, late: true)
        let draft = JobEvents.draft(.attempt(job.attempts[index]), of: job)
        if let events {
            recorder.save(job, revision: Int.max) { write in
                events.commit([draft].compactMap { $0 }, alongWith: write)
            }
        } else {
            recorder.save(job, revision: Int.max)
        }
        recorder.forget(id)
    }
}
