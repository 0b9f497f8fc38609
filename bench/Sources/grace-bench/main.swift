// Benchmarks of the job engine on the simulated host, in one process: graced's Application serving
// HTTP on loopback, this program as its client, and the simulated kernel's state read directly to
// know the instant a device becomes ready. Figures go to bench/RESULTS.md with the command.
//
//   swift run -c release grace-bench [--trials N]
//   swift run -c release grace-bench --events [--clients N] [--trials N]   (EventsBench.swift)
//   swift run -c release grace-bench make-tree N DIR   (a sysfs tree of N GPUs for bench/*.sh)
//   swift run -c release grace-bench http-load TARGET ...   (HTTP load over TCP or a Unix socket)

import GraceAPI
import GraceClient
import GraceHTTP
import GraceSimulation
import Logging
import Passthrough
import PassthroughSimulator
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Prints at once: results of a long run should appear as they come.
func report(_ line: String) {
    print(line)
    fflush(nil)
}

func nowMs() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) * 1000 + Double(spec.tv_nsec) / 1_000_000
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

// `grace-bench make-tree N DIR`: writes a generated sysfs tree for the shell benchmarks and exits.
if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "make-tree",
    let count = Int(CommandLine.arguments[2])
{
    try GeneratedTree.make(functions: count, at: CommandLine.arguments[3])
    exit(0)
}

// `grace-bench http-load TARGET ...`: an HTTP load generator that also speaks over a Unix socket
// (HTTPLoad.swift); prints its figures and exits.
if CommandLine.arguments.count >= 2, CommandLine.arguments[1] == "http-load" {
    exit(HTTPLoad.run(Array(CommandLine.arguments.dropFirst(2))))
}

var trials = 200
if let index = CommandLine.arguments.firstIndex(of: "--trials"), index + 1 < CommandLine.arguments.count,
    let value = Int(CommandLine.arguments[index + 1])
{
    trials = value
}

let eventsMode = CommandLine.arguments.contains("--events")
let eventClients =
    CommandLine.arguments.firstIndex(of: "--clients").flatMap { index in
        index + 1 < CommandLine.arguments.count ? Int(CommandLine.arguments[index + 1]) : nil
    } ?? 1000

/// Loopback without credentials or a rate limit: the benchmark measures the engine, not the edge.
/// The event benchmark's clients all come from 127.0.0.1, so it lifts the connection limits too.
@MainActor func benchServer() -> HTTPServer.Configuration {
    var configuration = HTTPServer.Configuration.loopback()
    configuration.edge.mutationsPerMinute = 0
    if eventsMode {
        configuration.connectionLimit = eventClients + 64
        configuration.perClientConnectionLimit = 0
    }
    return configuration
}

let simulated = try SimulatedHost.createTemporary(prefix: "grace-bench")
defer { try? simulated.removeFiles() }
var logger = Logger(label: "bench")
logger.logLevel = .critical
let application = try Application(
    host: .simulated(simulated),
    store: try GraceStore(path: simulated.folder + "/bench.sqlite"), server: benchServer(),
    rescanIntervalSeconds: 0, jobs: JobEngine.Configuration(workers: 4), logger: logger)
try application.start()
let client = BlockingHTTPClient(port: application.port!)
if eventsMode {
    EventsBench(application: application, port: application.port!).run(
        clients: eventClients, trials: CommandLine.arguments.contains("--trials") ? trials : 200)
    application.stop()
    exit(0)
}
let gpus = ["0008:01:00.0", "0009:01:00.0", "0029:01:00.0", "0000:c3:00.0"]
let terminal = JobSummary.terminalStates

extension BlockingHTTPClient {
    /// The job a request answers with, or nil for any other answer.
    func job(_ path: String, method: String = "GET", body: String = "") -> JobSummary? {
        try? request(method, path, body: body).decode(JobSummary.self)
    }

    func send(_ method: String, _ path: String, body: String = "") -> Response? {
        try? request(method, path, body: body)
    }
}

/// Polls the job until `done` holds; a job that ended otherwise stops the benchmark.
func waitFor(_ id: String, _ done: (JobSummary) -> Bool) -> Double {
    while true {
        guard let job = client.job("/jobs/\(id)") else { continue }
        if done(job) { return nowMs() }
        // A short pause between polls: on two cores a client spinning flat out would slow the
        // very threads it is timing.
        usleep(100)
        if terminal.contains(job.state) {
            let body = client.send("GET", "/jobs/\(id)")?.text ?? ""
            fatalError("job \(id) ended \(job.state) before the measurement: \(body)")
        }
    }
}

report("machine: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores; trials: \(trials)")

// 1. Cancellation latency: DELETE /jobs/{id} while the job polls a device that never becomes
// ready, to the job's terminal state: as a polling client sees it (GET /jobs/{id} every 100 µs plus
// its round trip), and as `gracectl cancel` does, in the answer of `DELETE /jobs/{id}?wait=30`.
// The two kinds alternate trial by trial, so they share the machine's state.
var cancellation: [Double] = []
var deleteAnswered: [Double] = []
var cancellationWaited: [Double] = []
for trial in 0..<(2 * trials) {
    let gpu = gpus[trial % gpus.count]
    _ = client.send("PUT", "/simulator/devices/\(gpu)/faults", body: #"{"neverReady": true}"#)
    guard let job = client.job("/gpus/\(gpu)/reset", method: "POST") else { fatalError("reset not accepted") }
    _ = waitFor(job.id) { $0.phase == "waiting_ready" }
    usleep(useconds_t(1000 + trial / 2 % 7 * 300))  // land at different points of the poll's backoff
    let start = nowMs()
    if trial % 2 == 1 {
        guard let answer = client.job("/jobs/\(job.id)?wait=30", method: "DELETE"),
            answer.state == "cancelled"
        else { fatalError("DELETE ?wait= did not answer with the cancelled job") }
        cancellationWaited.append(nowMs() - start)
        continue
    }
    _ = client.send("DELETE", "/jobs/\(job.id)")
    deleteAnswered.append(nowMs() - start)
    let end = waitFor(job.id) { terminal.contains($0.state) }
    cancellation.append(end - start)
}
report("cancellation latency (DELETE to terminal state): " + Statistics(cancellation).line(unit: " ms"))
report("  of which the DELETE round trip: " + Statistics(deleteAnswered).line(unit: " ms"))
report(
    "cancellation through DELETE ?wait= (sent to its answer showing cancelled): "
        + Statistics(cancellationWaited).line(unit: " ms"))

// 2. Readiness detection latency: from the instant the simulated device becomes ready (read from the
// simulated kernel in a tight loop) to the job's `succeeded`.
var detection: [Double] = []
for trial in 0..<trials {
    let gpu = gpus[trial % gpus.count]
    let bdf = BDF(gpu)!
    _ = client.send(
        "PUT", "/simulator/devices/\(gpu)/faults", body: #"{"neverReady": false, "readyAfterMs": 60}"#)
    guard let job = client.job("/gpus/\(gpu)/reset", method: "POST") else { fatalError("reset not accepted") }
    while simulated.kernel.isReady(bdf) != false {}  // the reset has happened
    while simulated.kernel.isReady(bdf) != true {}  // and the device is ready again
    let readyAt = nowMs()
    let end = waitFor(job.id) { terminal.contains($0.state) }
    guard client.job("/jobs/\(job.id)")?.state == "succeeded" else { fatalError("job did not succeed") }
    detection.append(end - readyAt)
}
report(
    "readiness detection latency (device ready to job succeeded): " + Statistics(detection).line(unit: " ms"))
WaitBench(client: client, kernel: simulated.kernel, gpus: gpus).run(trials: trials)

// 3. CPU cost of polling: jobs waiting on devices that never become ready, process CPU over 5 s.
// (Not the CXL GPU: with Memory_Info_Valid never set its job rightly ends after 1 s.)
let pollingGPUs = gpus.filter { $0 != "0008:01:00.0" }
// The rest of the process (HTTP threads, health watch, timers) idles meanwhile: measured first, so
// the per-device figure is what waiting adds.
let idleBefore = cpuSeconds()
let idleWallBefore = nowMs()
usleep(2_000_000)
let idleShare = (cpuSeconds() - idleBefore) / ((nowMs() - idleWallBefore) / 1000)
var waiting: [String] = []
for gpu in pollingGPUs {
    _ = client.send("PUT", "/simulator/devices/\(gpu)/faults", body: #"{"neverReady": true}"#)
    guard let job = client.job("/gpus/\(gpu)/reset", method: "POST", body: #"{"deadlineSeconds": 60}"#) else {
        fatalError("reset not accepted")
    }
    waiting.append(job.id)
}
for id in waiting { _ = waitFor(id) { $0.phase == "waiting_ready" } }
usleep(200_000)  // past the fast start of the backoff
// Two windows: the rest of the first second, where the sleeps are still short, and a long wait's
// steady state, where they have widened to the policy's ceiling.
func pollingCPU(seconds: Double) -> (wall: Double, perDevice: Double) {
    let cpuBefore = cpuSeconds()
    let wallBefore = nowMs()
    usleep(UInt32(seconds * 1_000_000))
    let cpu = cpuSeconds() - cpuBefore
    let wall = (nowMs() - wallBefore) / 1000
    return (wall, max(cpu / wall - idleShare, 0) / Double(pollingGPUs.count) * 100)
}
let early = pollingCPU(seconds: 1)
let steady = pollingCPU(seconds: 5)
for id in waiting { _ = client.send("DELETE", "/jobs/\(id)") }
func percent(_ value: Double) -> String { String((value * 100).rounded() / 100) }
report(
    "polling CPU per waiting device (\(pollingGPUs.count) devices): \(percent(early.perDevice)) % of one core "
        + "from 0.2 to 1.2 s into the wait, \(percent(steady.perDevice)) % from 1.2 to \(percent(1.2 + steady.wall)) s "
        + "(the idle process's \(percent(idleShare * 100)) % taken off)"
)
application.stop()
