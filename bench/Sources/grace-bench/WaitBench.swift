import FoundationEssentials
import GraceAPI
import GraceClient
import GraceHTTP
import Passthrough
import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /jobs/{id}?wait=`: how soon a waiting client hears that its job ended. Each trial sends the
/// waiting request before the device is ready and times from the instant the simulated device
/// became ready to the answer: the same span as the polling client's readiness detection measured
/// in the same run, so the two compare directly.
struct WaitBench {
    let client: BlockingHTTPClient
    let kernel: SimulatedKernel
    let gpus: [String]

    func run(trials: Int) {
        var fromReady: [Double] = []
        for trial in 0..<trials {
            let gpu = gpus[trial % gpus.count]
            let bdf = BDF(gpu)!
            _ = try? client.request(
                "PUT", "/simulator/devices/\(gpu)/faults", body: #"{"neverReady": false, "readyAfterMs": 60}"#
            )
            guard let job = try? client.request("POST", "/gpus/\(gpu)/reset").decode(JobSummary.self) else {
                fatalError("reset not accepted")
            }
            // The device's ready instant, read from the simulated kernel on a thread of its own while
            // this one waits in the request.
            let readyAt = ReadyClock()
            let kernel = kernel
            let watcher = Thread { readyAt.set(kernel: kernel, bdf: bdf) }
            watcher.start()
            guard let answer = try? client.request("GET", "/jobs/\(job.id)?wait=30"),
                let done = try? answer.decode(JobSummary.self)
            else { fatalError("the waiting GET failed") }
            let answeredMs = nowMs()
            watcher.join()
            guard done.state == "succeeded" else { fatalError("job \(job.id) ended \(done.state)") }
            fromReady.append(answeredMs - readyAt.value)
        }
        report(
            "readiness detection through ?wait= (device ready to the waiting GET's answer): "
                + Statistics(fromReady).line(unit: " ms"))
    }
}

/// When the simulated device became ready, as seen by a thread spinning on the kernel's flag.
private final class ReadyClock: @unchecked Sendable {
    private(set) var value: Double = 0

    func set(kernel: SimulatedKernel, bdf: BDF) {
        while kernel.isReady(bdf) != false {}
        while kernel.isReady(bdf) != true {}
        value = nowMs()
    }
}

/// A joinable POSIX thread for the benchmark's helper loops.
private final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
    }

    func start() {
        let retained = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &handle, nil,
            { raw in
                let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                thread.body()
                return nil
            }, retained)
    }

    func join() {
        pthread_join(handle, nil)
    }
}
