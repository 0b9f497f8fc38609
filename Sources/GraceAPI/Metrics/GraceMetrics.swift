import BuildInfo
import GraceHTTP
import Passthrough
import Prometheus
import Synchronization

/// The service's Prometheus metrics, in a registry the Application owns (never the process-wide
/// default: several services in one test process must not count into each other).
///
/// Two kinds of series: counters and histograms fed by events (a job finished, a request answered, a
/// layout drifted), which live in `registry`; and gauges that only restate the inventory snapshot or
/// the job engine's load, computed at scrape time into a registry made for that scrape, so a GPU
/// that left the host or a state it left leaves no stale series behind.
public final class GraceMetrics: Sendable {
    /// The event-fed series. Also the registry of `factory`.
    public let registry = PrometheusCollectorRegistry()
    /// For code instrumented with swift-metrics: pass it as `factory:` and the series land in this
    /// registry (and in `GET /metrics`) without bootstrapping the process-global metrics system.
    public let factory: PrometheusMetricsFactory

    /// Seconds, from a fast FLR (100 ms) to the longest CXL wait (256 s) and the deadline cap.
    static let durationBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900]
    /// Seconds for HTTP answers: snapshot reads take microseconds, a waiting client up to minutes.
    static let requestBuckets: [Double] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]
    /// Fraction of the job's deadline spent waiting for readiness.
    static let ratioBuckets: [Double] = [0.1, 0.25, 0.5, 0.75, 0.9, 1]

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    // MARK: Events

    /// A job reached a terminal state: counted by kind and outcome; a reset also by device, method
    /// and outcome, with its duration, and any readiness wait by method and probe.
    func jobFinished(_ job: Job) {
        let method = job.methodUsed ?? job.methodRequested
        let failure = job.failure?.errno?.name ?? (job.failure == nil ? "none" : "other")
        registry.makeCounter(
            descriptor: Self.describe(.jobsFinished),
            labels: [("kind", job.kind.rawValue), ("state", job.state.rawValue), ("errno", failure)]
        ).increment()
        if job.kind == .reset {
            registry.makeCounter(
                descriptor: Self.describe(.resets),
                labels: [("bdf", job.gpu.description), ("method", method), ("outcome", job.state.rawValue)]
            ).increment()
            // The run, from leaving the queue to the end; time spent queued behind other jobs is not
            // the reset's.
            if let started = job.phases.first(where: { $0.name != JobPhaseName.queued.rawValue }),
                let finished = job.finishedAtMs
            {
                registry.makeValueHistogram(
                    descriptor: Self.describe(.resetDuration), labels: [("method", method)],
                    buckets: Self.durationBuckets
                ).record(Double(max(0, finished - started.startedAtMs)) / 1000)
            }
        }
        if let readiness = job.details.readiness {
            let labels = [("method", method), ("probe", readiness.probe)]
            registry.makeValueHistogram(
                descriptor: Self.describe(.readinessWait), labels: labels, buckets: Self.durationBuckets
            ).record(Double(readiness.waitedMs) / 1000)
            let allowed = job.details.deadlineMs - job.createdAtMs
            if allowed > 0 {
                registry.makeValueHistogram(
                    descriptor: Self.describe(.readinessDeadlineRatio), labels: labels,
                    buckets: Self.ratioBuckets
                ).record(Double(readiness.waitedMs) / Double(allowed))
            }
        }
    }

    /// An answer went out: `route` is the matched template (`/gpus/{bdf}/reset`), never the raw path,
    /// so the number of series stays bounded whatever clients send.
    func requestServed(route: String, code: Int, seconds: Double) {
        let (counter, duration) = requestSeries.withLock { series in
            if let known = series[route], let counter = known.counters[code] {
                return (counter, known.duration)
            }
            let duration =
                series[route]?.duration
                ?? registry.makeValueHistogram(
                    descriptor: Self.describe(.httpDuration), labels: [("route", route)],
                    buckets: Self.requestBuckets)
            let counter = registry.makeCounter(
                descriptor: Self.describe(.httpRequests), labels: [("route", route), ("code", String(code))])
            series[route, default: RequestSeries(duration: duration)].counters[code] = counter
            return (counter, duration)
        }
        counter.increment()
        duration.record(seconds)
    }

    /// The request series of one route, kept so that an answer costs a dictionary lookup rather
    /// than the registry's lookup by name and labels (a tenth of a `GET /gpus`'s instructions).
    /// Routes are templates and codes a handful, so it stays small whatever clients send.
    private struct RequestSeries {
        let duration: ValueHistogram
        var counters: [Int: Counter] = [:]
    }

    private let requestSeries = Mutex<[String: RequestSeries]>([:])

    /// A new layout snapshot differed from the one before.
    func layoutDrifted(_ bdf: String) {
        registry.makeCounter(descriptor: Self.describe(.layoutDrift), labels: [("bdf", bdf)]).increment()
    }

    // MARK: Scrape

    /// What the engine reports at scrape time.
    struct EngineFigures: Sendable {
        var queued: Int
        var running: Int
        var stuckKernelWrites: Int
    }

    /// The exposition: the event-fed series, then the gauges restating `snapshot` and `engine`.
    func scrape(snapshot: InventorySnapshot, engine: EngineFigures) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        registry.emit(into: &buffer)
        Self.gauges(snapshot: snapshot, engine: engine).emit(into: &buffer)
        return buffer
    }

    static func gauges(snapshot: InventorySnapshot, engine: EngineFigures) -> PrometheusCollectorRegistry {
        let gauges = PrometheusCollectorRegistry()
        func set(_ metric: Metric, _ labels: [(String, String)], _ value: Double) {
            gauges.makeGauge(descriptor: describe(metric), labels: labels).set(value)
        }
        set(.buildInfo, [("version", BuildInfo.version), ("revision", BuildInfo.revision)], 1)
        for gpu in snapshot.gpus {
            let bdf = ("bdf", gpu.bdf)
            set(
                .gpuInfo,
                [
                    bdf, ("vendor_id", gpu.vendorId), ("device_id", gpu.deviceId), ("name", gpu.deviceName),
                    ("driver", gpu.driver ?? "none"),
                ], 1)
            set(.gpuState, [bdf, ("state", gpu.state.rawValue)], 1)
            if gpu.health.reasons.isEmpty {
                set(.gpuHealth, [bdf, ("reason", "none")], 1)
            }
            for reason in gpu.health.reasons {
                set(.gpuHealth, [bdf, ("reason", reason.reason.rawValue)], 1)
            }
            if let speed = gpu.link.currentSpeed { set(.linkSpeed, [bdf], speed) }
            if let speed = gpu.link.maxSpeed { set(.linkSpeedMax, [bdf], speed) }
            if let width = gpu.link.currentWidth { set(.linkWidth, [bdf], Double(width)) }
            if let width = gpu.link.maxWidth { set(.linkWidthMax, [bdf], Double(width)) }
        }
        set(.jobs, [("state", JobState.queued.rawValue)], Double(engine.queued))
        set(.jobs, [("state", JobState.running.rawValue)], Double(engine.running))
        gauges.makeGauge(descriptor: describe(.kernelWritesStuck)).set(Double(engine.stuckKernelWrites))
        return gauges
    }

    static func describe(_ metric: Metric) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: metric.rawValue, unitName: "", helpText: metric.help)
    }
}
