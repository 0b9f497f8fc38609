import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// An escalating reset's rungs on the job's machine, event by event.
@Suite("Escalation rungs on the job machine")
struct JobMachineRungTests {
    @Test("a rung is recorded when it starts, completed once, and only while the job runs")
    func rungLifecycle() {
        var machine = JobMachineTests.machine()
        // Not running yet: nothing is recorded.
        #expect(machine.rungStarted(.functionReset, method: "flr", atMs: 2, deadlineMs: 100) == [])
        #expect(machine.job.details.rungs == nil)
        _ = machine.started()
        #expect(machine.rungStarted(.functionReset, method: "flr", atMs: 3, deadlineMs: 100) == [.persist])
        #expect(machine.job.methodUsed == "flr")
        #expect(machine.job.details.rungs?.count == 1 && machine.job.details.rungs?[0].outcome == nil)
        #expect(machine.rungEnded(outcome: "not_ready", detail: "stale", atMs: 50) == [.persist])
        // A second end of the same rung changes nothing.
        #expect(machine.rungEnded(outcome: "recovered", detail: nil, atMs: 51) == [])
        #expect(machine.job.details.rungs?[0].outcome == "not_ready")
        #expect(machine.job.details.rungs?[0].endedAtMs == 50)

        #expect(machine.rungStarted(.busReset, method: "bus", atMs: 52, deadlineMs: 200) == [.persist])
        #expect(machine.rungEnded(outcome: "recovered", detail: nil, atMs: 90) == [.persist])
        #expect(machine.job.details.rungs?.map(\.method) == ["flr", "bus"])
        #expect(machine.job.methodUsed == "bus")
    }

    @Test("a job that gives up needs a reboot: failed with needs-reboot once concluded")
    func needsReboot() {
        var machine = JobMachineTests.machine()
        _ = machine.started()
        _ = machine.rungStarted(.removeRescan, method: "remove+rescan", atMs: 3, deadlineMs: 100)
        _ = machine.rungEnded(outcome: "not_ready", detail: "still not ready", atMs: 90)
        let failure = JobFailure.needsReboot(JobMachineTests.gpu, tried: ["flr", "remove+rescan"])
        #expect(machine.ended(.failed, failure) == [])
        #expect(machine.state == .concluding(.init(state: .failed, failure: failure)))
        #expect(machine.concluded(atMs: 100) == [.notifyWaiters, .publish(.finished)])
        #expect(machine.job.failure?.reason == .needsReboot)
        #expect(machine.job.failure?.resolution.contains("power-cycle") == true)
        // The machine is finished: a rung can no longer start.
        #expect(machine.rungStarted(.reboot, method: "reboot", atMs: 101, deadlineMs: 100) == [])
    }
}
