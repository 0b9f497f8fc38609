import GraceTestSupport
import Synchronization
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

/// Waits on the demo host: a reset makes each kind of device not ready, and the simulated kernel
/// brings it back after the window the test sets. Serialized: the windows are short and timed.
@Suite(.serialized) struct ReadinessWaiterTests {
    static let cxlGPU = bdf("0008:01:00.0")
    static let gh200 = bdf("0009:01:00.0")
    static let h100 = bdf("0000:c3:00.0")

    /// The probe the engine would make from the inventory's record, taken before the reset.
    func probe(_ host: SimulatedHost, _ device: BDF) throws -> ReadinessProbe {
        let gpu = try #require(
            try HostInventory(root: host.root).scan().first { $0.bdf == device.description })
        let expected = try #require(PCIExpectation(gpu))
        return ReadinessProbe.make(kind: gpu.readinessProbe, bdf: device, root: host.root, expected: expected)
    }

    /// Resets the device with the given window and waits for it on a thread of its own; also
    /// returns how long after the reset began the wait returned (the window starts at the reset,
    /// the wait when its thread gets to run).
    func resetAndWait(
        _ host: SimulatedHost, _ device: BDF, readyAfterMs: Int, deadlineMs: Int = 3000,
        faults: SimulatorFaults = SimulatorFaults()
    ) async throws -> (ReadinessOutcome, ReadinessProbe, sinceResetMs: Double) {
        let probe = try probe(host, device)
        // What the engine does first: keep runtime PM from putting an idle vfio device in D3hot,
        // where its BARs would read all-ones.
        try host.kernel.perform(.powerControl(device, "on"))
        try host.kernel.setFaults(faults.merging(SimulatorFaults(readyAfterMs: readyAfterMs)), for: device)
        let resetAt = nowMs()
        try host.kernel.perform(.reset(device))
        let (outcome, returnedAt) = await offPool {
            let outcome = ReadinessWaiter.wait(
                for: probe, deadline: deadline(inMs: deadlineMs), token: CancellationToken())
            return (outcome, nowMs())
        }
        return (outcome, probe, returnedAt - resetAt)
    }

    /// Resets the device (it never comes back while `faults` say so) and waits for it on a thread of
    /// its own, on a clock whose time only the wait's sleeps advance: each poll's time is exact.
    func resetAndWaitVirtually(
        _ host: SimulatedHost, _ device: BDF, deadlineMs: Int, faults: SimulatorFaults,
        policy: PollPolicy = .adaptive
    ) async throws -> (ReadinessOutcome, VirtualReadinessClock) {
        let probe = try probe(host, device)
        try host.kernel.perform(.powerControl(device, "on"))
        try host.kernel.setFaults(faults, for: device)
        try host.kernel.perform(.reset(device))
        let clock = VirtualReadinessClock()
        let outcome = await offPool {
            ReadinessWaiter.wait(
                for: probe, deadline: clock.deadline(inMs: deadlineMs), token: CancellationToken(),
                policy: policy, clock: clock)
        }
        return (outcome, clock)
    }

    @Test(arguments: [cxlGPU, gh200, h100])
    func readyAfterTheSimulatedWindow(device: BDF) async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, device)
            try host.kernel.perform(.powerControl(device, "on"))
            try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 150), for: device)
            // The device's return waits for the test, which lets it go once the window has passed
            // and the wait has polled it not ready a few times: however slowly the threads run.
            try host.kernel.holdReadiness(device)
            let resetAt = nowMs()
            try host.kernel.perform(.reset(device))
            let clock = CountingReadinessClock()
            let returned = Mutex<Double?>(nil)
            let waiting = Task {
                await offPool {
                    // The deadline only guards against a hang.
                    let outcome = ReadinessWaiter.wait(
                        for: probe, deadline: deadline(inMs: 60_000), token: CancellationToken(), clock: clock
                    )
                    returned.withLock { $0 = nowMs() }
                    return outcome
                }
            }
            #expect(
                try await waitUntil { host.kernel.heldReadinessSteps(device) > 0 && clock.sleepCount >= 2 }
                    != nil)
            #expect(
                returned.withLock { $0 } == nil, "\(device): the wait ended while the device was in reset")
            host.kernel.releaseReadiness(device)
            let outcome = await waiting.value
            #expect(outcome.result == .ready, "\(device): \(outcome)")
            let sinceReset = try #require(returned.withLock { $0 }) - resetAt
            #expect(sinceReset >= 149, "\(device) ready \(sinceReset) ms after the reset")
            #expect(outcome.polls > 2 && outcome.polls < 1000, "\(outcome.polls) polls")
            #expect(outcome.lastObservation == "ready")
            #expect(probe.verifyLayout().isEmpty)
            #expect(host.kernel.isReady(device) == true)
        }
    }

    @Test func theProbeKindsOfTheDemoGPUs() throws {
        try withDemoHost { host in
            let kinds = try [Self.cxlGPU, Self.gh200, Self.h100].map { try probe(host, $0).kind }
            #expect(kinds == [.cxlDVSEC, .nvgraceBAR0, .pci])
        }
    }

    @Test func cxlNotesWhenValidCameBack() async throws {
        try await withDemoHostAsync { host in
            let (outcome, _, _) = try await resetAndWait(host, Self.cxlGPU, readyAfterMs: 200)
            #expect(outcome.result == .ready)
            #expect(outcome.notes.count == 1)
            #expect(outcome.notes.first?.hasPrefix("Memory_Info_Valid seen after") == true)
            #expect(outcome.notes.first?.hasSuffix("Memory_Active timeout 256 s (code 4)") == true)
        }
    }

    @Test func neverReadyTimesOutAtTheDeadline() async throws {
        try await withDemoHostAsync { host in
            let (outcome, _) = try await resetAndWaitVirtually(
                host, Self.h100, deadlineMs: 300, faults: SimulatorFaults(readyAfterMs: 100, neverReady: true)
            )
            #expect(outcome.result == .timedOut(lastReason: "config space reads all-ones (power_state D0)"))
            // The last sleep is cut to the deadline: the last poll is at it, not after it.
            #expect(outcome.waitedMs == 300, "timed out after \(outcome.waitedMs) ms")
            #expect(outcome.lastObservation == "not ready: config space reads all-ones (power_state D0)")
        }
    }

    @Test func nvgraceNeverReadyNamesTheRegisters() async throws {
        try await withDemoHostAsync { host in
            let (outcome, _) = try await resetAndWaitVirtually(
                host, Self.gh200, deadlineMs: 300,
                faults: SimulatorFaults(readyAfterMs: 100, neverReady: true))
            #expect(
                outcome.result
                    == .timedOut(lastReason: "BAR0 C2C link status 0x00, HBM training 0x00 (ready is 0xff)"))
            #expect(outcome.waitedMs == 300)
        }
    }

    @Test func cxlValidNeverSetFailsAfterOneSecond() async throws {
        try await withDemoHostAsync { host in
            let (outcome, _) = try await resetAndWaitVirtually(
                host, Self.cxlGPU, deadlineMs: 5000,
                faults: SimulatorFaults(readyAfterMs: 100, neverReady: true))
            guard case .failed(let why) = outcome.result else {
                Issue.record("expected a failure, got \(outcome)")
                return
            }
            #expect(why.hasPrefix("Memory_Info_Valid not set within 1 s"))
            #expect(outcome.waitedMs > 1000 && outcome.waitedMs < 1100, "failed after \(outcome.waitedMs) ms")
        }
    }

    @Test func cancelMidPollEndsTheWaitAtOnce() async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, Self.h100)
            try host.kernel.setFaults(SimulatorFaults(neverReady: true), for: Self.h100)
            try host.kernel.perform(.reset(Self.h100))
            let token = CancellationToken()
            let clock = CountingReadinessClock()
            let ended = CancelTime()
            // The deadline (a minute) only guards against a hang: a wait it ended would be timed out.
            let waiting = Task {
                await offPool {
                    let outcome = ReadinessWaiter.wait(
                        for: probe, deadline: deadline(inMs: 60_000), token: token, clock: clock)
                    ended.mark()
                    return outcome
                }
            }
            // Cancelled in the middle of the polls: once the wait has slept between polls twice.
            #expect(try await waitUntil { clock.sleepCount >= 2 } != nil)
            #expect(ended.value == 0, "the wait ended before the cancel")
            let cancelledAt = nowMs()
            token.cancel(reason: "job cancelled by the operator")
            let outcome = await waiting.value
            // The cancel ended the wait (not its deadline); how soon is a figure for bench/ (a test
            // run shares two cores with every other suite, so a tight bound here would be a coin toss).
            #expect(outcome.result == .cancelled("job cancelled by the operator"))
            #expect(ended.value >= cancelledAt, "ended \(ended.value - cancelledAt) ms after the cancel")
            #expect(outcome.polls >= 2)  // the second sleep began after the second poll
        }
    }

    @Test func aCancelledTokenEndsTheWaitBeforeAnyPoll() throws {
        try withDemoHost { host in
            let token = CancellationToken()
            token.cancel(reason: "shutting down")
            let outcome = ReadinessWaiter.wait(
                for: try probe(host, Self.h100), deadline: deadline(inMs: 1000), token: token)
            #expect(
                outcome
                    == ReadinessOutcome(
                        result: .cancelled("shutting down"), waitedMs: 0, polls: 0, notes: [],
                        lastObservation: ""))
        }
    }

    @Test func aReadyDeviceTakesOnePoll() throws {
        try withDemoHost { host in
            // Idle on a VFIO driver, the GH200 sits in D3hot with BAR0 reading all-ones; a job holds
            // it in D0 before probing, and so does this test.
            try host.kernel.perform(.powerControl(Self.gh200, "on"))
            // On virtual time: the answer comes from the first poll, without a sleep before it.
            let clock = VirtualReadinessClock()
            let outcome = ReadinessWaiter.wait(
                for: try probe(host, Self.gh200), deadline: clock.deadline(inMs: 1000),
                token: CancellationToken(),
                clock: clock)
            #expect(outcome.result == .ready)
            #expect(outcome.polls == 1)
            #expect(outcome.waitedMs == 0 && clock.sleeps.isEmpty)
        }
    }

    @Test func aVanishedDeviceIsGone() async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, Self.h100)
            try host.kernel.setFaults(SimulatorFaults(vanishOnReset: true), for: Self.h100)
            #expect(
                throws: KernelError(.operationNotSupportedByDevice, path: SysfsWrite.reset(Self.h100).path)
            ) {
                try host.kernel.perform(.reset(Self.h100))
            }
            let clock = VirtualReadinessClock()
            let outcome = await offPool {
                ReadinessWaiter.wait(
                    for: probe, deadline: clock.deadline(inMs: 2000), token: CancellationToken(), clock: clock
                )
            }
            #expect(outcome.result == .gone("device folder bus/pci/devices/0000:c3:00.0 is gone"))
            #expect(outcome.polls == 1)
            #expect(outcome.waitedMs == 0 && clock.sleeps.isEmpty)
        }
    }

    @Test func nvgraceWithoutResource0FallsBackAndStillWaitsForConfig() async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, Self.gh200)
            let files = TreeFiles(root: host.root)
            let folder = host.root.device(Self.gh200)
            files.remove(folder + "/resource0")
            // The device in reset, as the generic checks see it: config reads all-ones for 100 ms.
            let config = try host.root.readBytes(folder + "/config")
            try files.replace(folder + "/config", [UInt8](repeating: 0xFF, count: config.count))
            let outcome = await offPool {
                startThread {
                    _ = CancellationToken().sleep(for: .milliseconds(100))
                    try? files.replace(folder + "/config", config)
                }
                return ReadinessWaiter.wait(
                    for: probe, deadline: deadline(inMs: 2000), token: CancellationToken())
            }
            // Ready once the config reads back, before the deadline (how many ms that took is the
            // scheduler's business under load).
            #expect(outcome.result == .ready)
            #expect(outcome.notes == ["BAR0 resource0 is missing; fell back to the generic PCI checks"])
        }
    }

    @Test func changedIDsTimeOutNamingBoth() async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, Self.h100)
            let files = TreeFiles(root: host.root)
            let path = host.root.device(Self.h100) + "/config"
            // Back in recovery mode: 10de:2300 instead of 10de:2331.
            try files.patch(path, offset: 2, [0x00, 0x23])
            let outcome = await offPool {
                ReadinessWaiter.wait(for: probe, deadline: deadline(inMs: 100), token: CancellationToken())
            }
            #expect(outcome.result == .timedOut(lastReason: "IDs read 10de:2300, expected 10de:2331"))
        }
    }

    @Test func pollIntervalsGrowToTheCapAndTheLastPollIsAtTheDeadline() async throws {
        try await withDemoHostAsync { host in
            let policy = PollPolicy(initial: .milliseconds(1), cap: .milliseconds(20), multiplier: 2)
            let (outcome, clock) = try await resetAndWaitVirtually(
                host, Self.h100, deadlineMs: 200, faults: SimulatorFaults(neverReady: true), policy: policy)
            // 1+2+4+8+16 = 31 ms, then 20 ms steps to 191 ms, and the last one cut to the deadline.
            let expected: [Duration] =
                [1, 2, 4, 8, 16].map { .milliseconds($0) } + Array(repeating: .milliseconds(20), count: 8)
                + [.milliseconds(9)]
            #expect(clock.sleeps == expected, "\(clock.sleeps)")
            #expect(outcome.polls == expected.count + 1, "\(outcome.polls) polls")
            #expect(outcome.waitedMs == 200)
            #expect(outcome.result == .timedOut(lastReason: "config space reads all-ones (power_state D0)"))
        }
    }

    @Test func pollPolicyClampsAndGrows() {
        let policy = PollPolicy(initial: .zero, cap: .zero, multiplier: 0.5)
        #expect(policy.initial == .microseconds(1))
        #expect(policy.cap == .microseconds(1))
        #expect(policy.multiplier == 1)
        let adaptive = PollPolicy.adaptive
        #expect(adaptive.next(after: .microseconds(250)) == .microseconds(500))
        #expect(adaptive.next(after: .milliseconds(3)) == .milliseconds(4))
        let odd = PollPolicy(
            initial: .milliseconds(1), cap: .milliseconds(4), multiplier: 2, lateness: 7, ceiling: .zero)
        #expect(odd.lateness == 1)
        #expect(odd.ceiling == .milliseconds(4))
        #expect(
            PollPolicy(initial: .milliseconds(1), cap: .milliseconds(4), multiplier: 2, lateness: .nan)
                .lateness == 0)
    }

    /// Short waits keep the cap; long ones widen to a share of the wait, never past the ceiling.
    @Test func adaptiveSleepsWidenWithTheWait() {
        let adaptive = PollPolicy.adaptive
        // Still the 4 ms cap at 60 ms: a device back within a fraction of a second is seen promptly.
        #expect(adaptive.next(after: .milliseconds(4), waited: .milliseconds(60)) == .milliseconds(4))
        // A twentieth of the wait past 80 ms.
        #expect(adaptive.next(after: .milliseconds(4), waited: .milliseconds(400)) == .milliseconds(20))
        // Never more than the ceiling, however long the wait.
        #expect(adaptive.next(after: .milliseconds(50), waited: .seconds(256)) == .milliseconds(50))
        // Growing from the initial sleep is not skipped by a long wait (a probe whose read blocked).
        #expect(adaptive.next(after: .microseconds(250), waited: .seconds(10)) == .microseconds(500))
        // No lateness: the cap is the last word.
        let flat = PollPolicy(initial: .milliseconds(1), cap: .milliseconds(4), multiplier: 2)
        #expect(flat.next(after: .milliseconds(4), waited: .seconds(100)) == .milliseconds(4))
    }

    /// A device that stays unready for long costs few polls: the sleeps widen with the wait. Without
    /// widening, the same 600 ms at a 4 ms cap would take about 150 polls.
    @Test func aLongWaitPollsLessAndLess() async throws {
        try await withDemoHostAsync { host in
            let probe = try probe(host, Self.h100)
            try host.kernel.setFaults(SimulatorFaults(neverReady: true), for: Self.h100)
            try host.kernel.perform(.reset(Self.h100))
            let policy = PollPolicy(
                initial: .milliseconds(1), cap: .milliseconds(4), multiplier: 2, lateness: 0.25,
                ceiling: .milliseconds(100))
            let outcome = await offPool {
                ReadinessWaiter.wait(
                    for: probe, deadline: deadline(inMs: 600), token: CancellationToken(), policy: policy)
            }
            // 1+2+4 ms, 4 ms steps to 16 ms, then each sleep a quarter of the wait (x1.25 a step) to
            // the 100 ms ceiling at 400 ms, and two more: about 25 polls.
            #expect(outcome.result.kind == "timed_out")
            #expect(outcome.polls <= 40, "\(outcome.polls) polls")
        }
    }

    @Test func outcomeEncodesItsResultFlat() throws {
        let results: [ReadinessResult] = [
            .ready, .timedOut(lastReason: "link"), .gone("x"), .failed("y"), .cancelled("z"),
        ]
        for result in results {
            #expect(ReadinessResult(kind: result.kind, reason: result.reason) == result)
        }
        #expect(ReadinessResult(kind: "sideways", reason: nil) == nil)
    }
}

/// When a test thread cancelled, read by another.
final class CancelTime: Sendable {
    private let time = Mutex<Double>(0)
    func mark() { time.withLock { $0 = nowMs() } }
    var value: Double { time.withLock { $0 } }
}
