import GraceTestSupport
import Synchronization
import Testing

@testable import Passthrough

/// Each sleep that a cancel must end is a minute long: a sleep the cancel did not wake runs that
/// long, which no scheduling delay on a loaded machine comes near, while how soon a woken thread
/// runs again is the scheduler's business (a figure for bench/, not a bound for a test).
@Suite(.serialized) struct ReadinessCancellationTokenTests {
    @Test func sleepWakesAtACancelFromAnotherThread() async throws {
        let token = CancellationToken()
        let cancelledAt = Mutex<Double>(0)
        // The canceller is a thread too, so its timing does not depend on the cooperative pool.
        startThread {
            _ = CancellationToken().sleep(for: .milliseconds(50))
            cancelledAt.withLock { $0 = nowMs() }
            token.cancel(reason: "operator asked")
        }
        let (woken, wokeAt) = await offPool { (token.sleep(for: .seconds(60)), nowMs()) }
        let latency = wokeAt - cancelledAt.withLock { $0 }
        #expect(woken)
        #expect(latency >= 0 && latency < 60_000, "woke \(latency) ms after the cancel")
        #expect(token.reason == "operator asked")
    }

    @Test func sleepAfterCancelReturnsAtOnce() {
        let token = CancellationToken()
        token.cancel(reason: "early")
        let start = nowMs()
        #expect(token.sleep(for: .seconds(60)))
        #expect(nowMs() - start < 60_000)
        #expect(token.isCancelled)
    }

    @Test func sleepRunsItsFullDurationWhenNotCancelled() {
        let token = CancellationToken()
        let start = nowMs()
        #expect(!token.sleep(for: .milliseconds(30)))
        let slept = nowMs() - start
        #expect(slept >= 30, "slept \(slept) ms")
        #expect(!token.sleep(for: .zero))
        #expect(!token.sleep(for: .milliseconds(-5)))
        #expect(!token.isCancelled)
        #expect(token.reason == nil)
    }

    @Test func theFirstReasonWins() {
        let token = CancellationToken()
        token.cancel(reason: "deadline of the job")
        token.cancel(reason: "operator asked")
        #expect(token.reason == "deadline of the job")
    }

    @Test func handlersRunOnceAndAtOnceWhenAlreadyCancelled() {
        let token = CancellationToken()
        let calls = Mutex<[String]>([])
        token.onCancel { calls.withLock { $0.append("before") } }
        #expect(calls.withLock { $0 }.isEmpty)
        token.cancel(reason: "one")
        token.cancel(reason: "two")
        #expect(calls.withLock { $0 } == ["before"])
        token.onCancel { calls.withLock { $0.append("after") } }
        #expect(calls.withLock { $0 } == ["before", "after"])
    }

    @Test func manySleepersAllWake() async {
        let token = CancellationToken()
        startThread {
            _ = CancellationToken().sleep(for: .milliseconds(20))
            token.cancel(reason: "all of you")
        }
        let start = nowMs()
        async let first = offPool { token.sleep(for: .seconds(60)) }
        async let second = offPool { token.sleep(for: .seconds(60)) }
        async let third = offPool { token.sleep(for: .seconds(60)) }
        let woken = await [first, second, third]
        #expect(woken == [true, true, true])
        #expect(nowMs() - start < 60_000)
    }
}
