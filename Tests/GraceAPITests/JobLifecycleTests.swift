import Testing

@testable import GraceAPI

@Suite("Job lifecycle")
struct JobLifecycleTests {
    @Test("a queued job cancelled before a worker takes it ends at once and is then skipped")
    func cancelWhileQueued() {
        var lifecycle = JobLifecycle.queued
        #expect(lifecycle.cancel(reason: "client") == .finishNow(reason: "client"))
        #expect(lifecycle == .finished)
        #expect(lifecycle.start() == .skip)
    }

    @Test("a running job is signalled once; later cancels and starts change nothing")
    func cancelWhileRunning() {
        var lifecycle = JobLifecycle.queued
        #expect(lifecycle.start() == .run)
        #expect(lifecycle.cancel(reason: "client") == .signalWorker(reason: "client"))
        #expect(lifecycle.cancel(reason: "shutdown") == .alreadyRequested)
        #expect(lifecycle == .running(cancelRequested: "client"))
        #expect(lifecycle.start() == .skip)
        lifecycle.finish()
        #expect(lifecycle.cancel(reason: "client") == .alreadyFinished)
    }

    @Test("terminal states are exactly the five final ones")
    func terminalStates() {
        #expect(
            JobState.allCases.filter(\.isTerminal) == [
                .succeeded, .failed, .timedOut, .cancelled, .interrupted,
            ])
    }
}
