import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// The job's and the device's state machines, driven event by event: no threads, no kernel, no SQLite.
@Suite("Job and device state machines")
struct JobMachineTests {
    static let gpu = BDF("0009:01:00.0")!

    static func machine() -> JobMachine {
        var job = Job(
            id: "j1", kind: .reset, gpu: gpu, deviceId: 1, state: .queued, phases: [],
            methodRequested: "auto",
            details: Job.Details(affected: [gpu.description], notes: [], deadlineMs: 10_000), createdAtMs: 1,
            idempotencyKey: nil, requestJSON: "{}")
        job.enter(.queued, atMs: 1)
        return JobMachine(job: job)
    }

    @Test(
        "a queued job cancelled before a worker takes it ends at once, off the caller's thread, and is then skipped"
    )
    func cancelWhileQueued() {
        var machine = Self.machine()
        let actions = machine.cancelRequested("client", atMs: 5)
        #expect(
            actions == [
                .signalCancellation("client"), .notifyWaiters, .publish(.finished), .concludeElsewhere,
            ])
        #expect(machine.state == .finished && machine.job.state == .cancelled)
        #expect(machine.job.failure?.reason == .cancelled)
        #expect(machine.started() == [])
        #expect(machine.cancelRequested("again", atMs: 6) == [])
    }

    @Test(
        "a running job is signalled once; later cancels change nothing; its outcome shows only once concluded"
    )
    func cancelWhileRunning() {
        var machine = Self.machine()
        #expect(machine.started() == [.run, .persist, .publish(.started)])
        #expect(machine.job.state == .running)
        #expect(machine.cancelRequested("client", atMs: 5) == [.signalCancellation("client")])
        #expect(machine.cancelRequested("shutdown", atMs: 6) == [])
        #expect(machine.cancelReason == "client")
        #expect(machine.ended(.cancelled, .cancelled("client")) == [])
        // The first outcome wins; the job still shows running until its devices have been read again.
        #expect(machine.ended(.succeeded, nil) == [])
        #expect(machine.job.state == .running)
        #expect(machine.concluded(atMs: 9) == [.notifyWaiters, .publish(.finished)])
        #expect(machine.job.state == .cancelled && machine.job.finishedAtMs == 9)
        #expect(machine.concluded(atMs: 10) == [])
    }

    @Test("each phase and each attempt is persisted before the kernel write it announces")
    func persistedAsItHappens() {
        var machine = Self.machine()
        _ = machine.started()
        let before = machine.revision
        #expect(machine.entered(.resetting, atMs: 3) == [.persist, .publish(.phase("resetting"))])
        #expect(machine.revision > before)
        let issued = machine.writeIssued(.reset(Self.gpu), atMs: 4)
        #expect(issued.first == .persist)
        #expect(machine.job.attempts.last?.returnedAtMs == nil)
        let failed = KernelError(.resourceBusy, path: "bus/pci/devices/0009:01:00.0/reset")
        #expect(machine.writeReturned(.reset(Self.gpu), error: failed, atMs: 7).first == .persist)
        #expect(
            machine.job.attempts.last?.returnedAtMs == 7 && machine.job.attempts.last?.errno == .resourceBusy)
        // A second return for the same attempt is not recorded twice.
        #expect(machine.writeReturned(.reset(Self.gpu), error: nil, atMs: 8) == [])
    }

    @Test("the readiness result is kept in the job and written with the next transition, not on its own")
    func readinessObserved() {
        var machine = Self.machine()
        _ = machine.started()
        let readiness = Job.Readiness(probe: "pci", result: "ready", waitedMs: 60, polls: 12)
        #expect(machine.observed(readiness, notes: ["link at 32 GT/s"]) == [])
        #expect(
            machine.job.details.readiness == readiness && machine.job.details.notes == ["link at 32 GT/s"])
        #expect(machine.entered(.verifying, atMs: 9).first == .persist)
    }

    @Test("restores owed are recorded, dropped when the write sticks, and cleared once carried out")
    func restores() {
        var machine = Self.machine()
        _ = machine.started()
        #expect(machine.owes([.powerControl(Self.gpu, "auto")]) == [.persist])
        #expect(machine.job.details.owedRestores?.map(\.value) == ["auto"])
        #expect(machine.restores == [.powerControl(Self.gpu, "auto")])
        _ = machine.writeIssued(.reset(Self.gpu), atMs: 2)
        #expect(machine.writeStuck(.reset(Self.gpu), recorded: true) == [.persist])
        #expect(machine.restores.isEmpty && machine.job.details.owedRestores == nil)
        #expect(machine.concluded(atMs: 3) == [.notifyWaiters, .publish(.finished)])
        #expect(machine.job.state == .timedOut && machine.job.failure?.reason == .wedged)
    }

    @Test("events out of order change nothing")
    func outOfOrder() {
        var machine = Self.machine()
        #expect(machine.entered(.resetting, atMs: 2) == [])
        #expect(machine.ended(.succeeded, nil) == [])
        #expect(machine.concluded(atMs: 3) == [])
        #expect(machine.job.state == .queued)
    }

    @Test("a device is claimed by one job, shown in the state that job imposes, freed by that job only")
    func device() {
        var device = DeviceMachine.claimed(job: "a")
        #expect(DeviceMachine.claim(device) == .busy(job: "a"))
        #expect(DeviceMachine.claim(nil) == .granted)
        #expect(device.impose(.resetting, by: "b") == nil)
        #expect(device.impose(.resetting, by: "a") == .some(.resetting))
        #expect(device.shown == .resetting)
        #expect(device.released(by: "b").next == device)
        #expect(device.settle(by: "a") == .some(nil))
        #expect(device == .claimed(job: "a"))
        let released = device.released(by: "a")
        #expect(released.next == nil && released.show == nil)
    }

    @Test("a wedged device refuses new jobs, survives its job's release, and is freed when the write returns")
    func wedged() {
        var device = DeviceMachine.imposed(job: "a", state: .resetting)
        let write = SysfsWrite.reset(Self.gpu)
        #expect(device.stuck(in: write, by: "a") == .some(.wedged))
        #expect(DeviceMachine.claim(device) == .wedged)
        #expect(device.released(by: "a").next == device)
        #expect(device.unstuck(from: .reset(BDF("0000:c3:00.0")!)).next == device)
        let freed = device.unstuck(from: write)
        #expect(freed.next == nil && freed.show == .some(nil))
    }
}
