import BuildInfo
import FoundationEssentials
import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// `GET /metrics` on the simulated host: the exposition, and counters that move with what happens.
@Suite("Metrics", .serialized)
struct MetricsTests {
    static let h100 = "0000:c3:00.0"

    @Test("a reset moves the reset counter and the duration and readiness histograms by one, with its labels")
    func resetCounted() async throws {
        let service = try await RunningService.start()
        let before = try await service.scrape()
        let job = try await service.submit(Self.h100, "reset")
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        let method = try #require(done.method.used)
        let counter = ["bdf": Self.h100, "method": method, "outcome": "succeeded"]
        // The job is counted when the engine finalizes it, a moment after it reads as finished.
        var after = try await service.scrape()
        try await waitUntil {
            after = try await service.scrape()
            return after.value("graceapi_resets_total", counter) != nil
        }
        #expect(
            after.value("graceapi_resets_total", counter)
                == (before.value("graceapi_resets_total", counter) ?? 0) + 1)
        for (name, labels) in [
            ("graceapi_reset_duration_seconds_count", ["method": method]),
            ("graceapi_readiness_wait_seconds_count", ["method": method, "probe": "pci"]),
            ("graceapi_readiness_wait_deadline_ratio_count", ["method": method, "probe": "pci"]),
        ] {
            #expect(after.value(name, labels) == (before.value(name, labels) ?? 0) + 1, "\(name)")
        }
        #expect(
            after.value(
                "graceapi_jobs_finished_total", ["kind": "reset", "state": "succeeded", "errno": "none"]) == 1
        )
        // No other GPU was counted.
        #expect(after.samples.filter { $0.name == "graceapi_resets_total" }.count == 1)
        try Self.save(after)
    }

    @Test("the exposition restates the inventory, the engine and HTTP answers by route template")
    func exposition() async throws {
        let service = try await RunningService.start()
        let gpus = service.application.inventory.snapshot.gpus
        _ = try await service.get("/gpus/\(Self.h100)")
        _ = try await service.get("/gpus/0000:01:00.0")
        _ = try await service.get("/no/such/path")
        let response = try await service.get("/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/plain; version=0.0.4")
        let metrics = Exposition(response.text)
        for gpu in gpus {
            #expect(
                metrics.value(
                    "graceapi_gpu_info",
                    [
                        "bdf": gpu.bdf, "vendor_id": gpu.vendorId, "device_id": gpu.deviceId,
                        "name": gpu.deviceName,
                        "driver": gpu.driver ?? "none",
                    ]) == 1)
            #expect(metrics.value("graceapi_gpu_state", ["bdf": gpu.bdf, "state": gpu.state.rawValue]) == 1)
            #expect(metrics.value("graceapi_gpu_health", ["bdf": gpu.bdf, "reason": "none"]) == 1)
            if let width = gpu.link.maxWidth {
                #expect(metrics.value("graceapi_gpu_link_width_max", ["bdf": gpu.bdf]) == Double(width))
            }
        }
        #expect(
            metrics.value(
                "graceapi_build_info", ["version": BuildInfo.version, "revision": BuildInfo.revision])
                == 1)
        #expect(metrics.value("graceapi_jobs", ["state": "queued"]) == 0)
        #expect(metrics.value("graceapi_kernel_writes_stuck", [:]) == 0)
        #expect(metrics.value("graceapi_http_requests_total", ["route": "/gpus/{bdf}", "code": "200"]) == 1)
        #expect(metrics.value("graceapi_http_requests_total", ["route": "/gpus/{bdf}", "code": "404"]) == 1)
        #expect(metrics.value("graceapi_http_requests_total", ["route": "unrouted", "code": "404"]) == 1)
        #expect(metrics.value("graceapi_http_request_duration_seconds_count", ["route": "/gpus/{bdf}"]) == 2)
        // Raw paths never become labels: the series stay bounded whatever clients send.
        #expect(!response.text.contains("0000:01:00.0\",code"))
        #expect(!response.text.contains("/no/such/path"))
        // Every series graced names has help and type lines.
        for metric in Metric.allCases where response.text.contains(metric.rawValue) {
            #expect(response.text.contains("# HELP \(metric.rawValue) "), "\(metric.rawValue)")
            #expect(
                response.text.contains("# TYPE \(metric.rawValue) \(metric.kind.rawValue)"),
                "\(metric.rawValue)")
        }
    }

    @Test("a viewer may scrape; a caller without credentials may not")
    func needsViewer() async throws {
        let guarded = try await GuardedService.start()
        #expect(try await guarded.request("GET", "/metrics").status == 401)
        #expect(try await guarded.request("GET", "/metrics", headers: guarded.bearer(.viewer)).status == 200)
    }

    @Test("two services in one process count into their own registries")
    func registriesApart() async throws {
        let first = try await RunningService.start()
        let second = try await RunningService.start()
        _ = try await first.get("/healthz")
        _ = try await first.get("/healthz")
        let mine = try await first.scrape()
        let theirs = try await second.scrape()
        #expect(mine.value("graceapi_http_requests_total", ["route": "/healthz", "code": "200"]) == 2)
        #expect(theirs.value("graceapi_http_requests_total", ["route": "/healthz", "code": "200"]) == nil)
    }

    /// CI runs `promtool check metrics` on a real scrape, saved where GRACEAPI_METRICS_SCRAPE says.
    static func save(_ exposition: Exposition) throws {
        guard let path = ProcessInfo.processInfo.environment["GRACEAPI_METRICS_SCRAPE"], !path.isEmpty else {
            return
        }
        try Data(exposition.text.utf8).write(to: URL(fileURLWithPath: path))
    }
}

/// A Prometheus text exposition read back: each sample's name, labels and value.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let text: String
    let samples: [Sample]

    init(_ text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap(Self.parse)
    }

    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// `name{a="x",b="y"} 1` (label values without escapes: ours have none).
    static func parse(_ line: Substring) -> Sample? {
        guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
            let value = Double(line[line.index(after: space)...])
        else { return nil }
        let series = line[..<space]
        guard let brace = series.firstIndex(of: "{") else {
            return Sample(name: String(series), labels: [:], value: value)
        }
        var labels: [String: String] = [:]
        let body = series[series.index(after: brace)..<series.index(before: series.endIndex)]
        for pair in body.split(separator: "\",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            labels[String(parts[0])] = String(parts[1].drop { $0 == "\"" }.prefix { $0 != "\"" })
        }
        return Sample(name: String(series[..<brace]), labels: labels, value: value)
    }
}

extension RunningService {
    func scrape() async throws -> Exposition {
        let response = try await get("/metrics")
        #expect(response.status == 200)
        return Exposition(response.text)
    }
}
