import FoundationEssentials
import GraceTestSupport
import Passthrough
import PassthroughSimulator
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// Real answers for `scripts/check-contract.py`, which validates them against openapi.yaml's schemas
/// (Swift has no JSON Schema validator here; Python's `jsonschema` is the reference one).
///
/// The test drives a service over the simulated host through every operation and many of its
/// refusals, and saves each answer in `.build/contract-answers/` as
/// `{"method", "path" (the operation's template), "status", "headers", "body"}`. It also saves the
/// bodies of a GPU that has nothing optional (no driver, IOMMU, NUMA node, bridge, link or device
/// memory), as a real host's can be but no simulated one is, encoded by the code that serves them.
@Suite("Contract answers", .serialized)
struct ContractAnswerTests {
    static let folder = ContractTests.repositoryRoot + "/.build/contract-answers"
    static let gh200 = "0009:01:00.0"
    static let cxl = "0008:01:00.0"
    static let h100 = "0000:c3:00.0"
    static let nvidiaBound = "0019:01:00.0"
    static let absent = "0000:00:1f.7"

    struct Answer: Encodable {
        var method: String
        var path: String
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// Numbers the files in the order the answers came, so a failure names the request that made it.
    final class Recorder: @unchecked Sendable {
        private var count = 0

        init() throws {
            let files = FileManager.default
            try? files.removeItem(atPath: ContractAnswerTests.folder)
            try files.createDirectory(atPath: ContractAnswerTests.folder, withIntermediateDirectories: true)
        }

        func save(_ method: String, _ template: String, _ response: RawHTTPClient.Response) throws {
            var headers: [String: String] = [:]
            for (name, value) in response.headers { headers[name] = value }
            try save(
                Answer(
                    method: method, path: template, status: response.status, headers: headers,
                    body: response.text))
        }

        func save(_ answer: Answer) throws {
            count += 1
            let name = answer.path.replacing("/", with: "_").replacing("{", with: "").replacing("}", with: "")
            let file = String(format3(count)) + "-\(answer.method)\(name)-\(answer.status).json"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try encoder.encode(answer).write(to: URL(filePath: ContractAnswerTests.folder + "/" + file))
        }

        private func format3(_ number: Int) -> String {
            let digits = String(number)
            return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        }
    }

    @Test("every operation's answers are saved for scripts/check-contract.py")
    func saveAnswers() async throws {
        let recorder = try Recorder()
        let service = try await RunningService.start()

        func get(_ template: String, _ target: String, headers: [(String, String)] = []) async throws
            -> RawHTTPClient.Response
        {
            let response = try await service.get(target, headers: headers)
            try recorder.save("GET", template, response)
            return response
        }
        func send(_ method: String, _ template: String, _ target: String, body: String? = nil) async throws
            -> RawHTTPClient.Response
        {
            let response = try await service.send(method, target, body: Array((body ?? "").utf8))
            try recorder.save(method, template, response)
            return response
        }

        // The inventory, each GPU and its layout, a conditional GET, and the refusals of a path.
        let list = try await get("/gpus", "/gpus")
        let bdfs = try list.decode(GPUListBody.self).items.map(\.bdf)
        #expect(bdfs.count >= 5)
        for bdf in bdfs {
            let detail = try await get("/gpus/{bdf}", "/gpus/\(bdf)")
            #expect(detail.status == 200)
            _ = try await get("/gpus/{bdf}/layout", "/gpus/\(bdf)/layout")
        }
        let etag = try #require(list.header("ETag"))
        #expect(try await get("/gpus", "/gpus", headers: [("If-None-Match", etag)]).status == 304)
        #expect(try await get("/gpus/{bdf}", "/gpus/\(Self.h100.uppercased())").status == 200)
        #expect(try await get("/gpus/{bdf}", "/gpus/0009%3A01%3A00.0").status == 200)
        #expect(try await get("/gpus/{bdf}", "/gpus/..%2Fetc").status == 400)
        #expect(try await get("/gpus/{bdf}/layout", "/gpus/\(Self.absent)/layout").status == 404)
        _ = try await get("/healthz", "/healthz")
        #expect(try await get("/livez", "/livez").status == 200)
        #expect(try await get("/readyz", "/readyz").status == 200)
        let contract = try await get("/openapi.yaml", "/openapi.yaml")
        #expect(contract.header("Content-Type") == "application/yaml")

        // Faults: set, read, refused.
        let faults = "/simulator/devices/{bdf}/faults"
        #expect(
            try await send(
                "PUT", faults, "/simulator/devices/\(Self.gh200)/faults", body: #"{"readyAfterMs": 50}"#
            )
            .status == 200)
        _ = try await get(faults, "/simulator/devices/\(Self.gh200)/faults")
        _ = try await get(faults, "/simulator/devices/\(Self.h100)/faults")
        #expect(
            try await send(
                "PUT", faults, "/simulator/devices/\(Self.h100)/faults", body: #"{"busyWrites": -1}"#
            )
            .status == 400)
        #expect(try await get(faults, "/simulator/devices/\(Self.absent)/faults").status == 404)

        // Dry runs (one refused in its plan), and refusals before a job exists.
        let reset = "/gpus/{bdf}/reset"
        #expect(
            try await send("POST", reset, "/gpus/\(Self.h100)/reset", body: #"{"dryRun": true}"#).status
                == 200)
        _ = try await send(
            "POST", reset, "/gpus/\(Self.gh200)/reset", body: #"{"dryRun": true, "method": "bus"}"#)
        _ = try await send("POST", reset, "/gpus/\(Self.gh200)/reset", body: #"{"method": "bus"}"#)
        #expect(
            try await send("POST", reset, "/gpus/\(Self.h100)/reset", body: #"{"deadlineSeconds": 7200}"#)
                .status
                == 422)
        #expect(try await send("POST", reset, "/gpus/\(Self.h100)/reset", body: "[]").status == 400)
        #expect(try await send("POST", reset, "/gpus/\(Self.absent)/reset").status == 404)
        let tooLarge = "{\"pad\": \"" + String(repeating: "x", count: 70_000) + "\"}"
        #expect(try await send("POST", reset, "/gpus/\(Self.h100)/reset", body: tooLarge).status == 413)
        let plain = try await offPool { [client = service.client] in
            try client.request(
                "POST", "/gpus/\(Self.h100)/reset", headers: [("Content-Type", "text/plain")],
                body: Array("{}".utf8))
        }
        #expect(plain.status == 415)
        try recorder.save("POST", reset, plain)

        // A job in each stage: queued (the 202), a conflict while it runs, cancelled, then finished.
        // Its reset write is held in the kernel until the DELETE is in: a CXL device that never
        // shows Memory_Info_Valid fails its wait after 1 s, which a loaded machine can use up.
        #expect(
            try await send(
                "PUT", faults, "/simulator/devices/\(Self.cxl)/faults", body: #"{"neverReady": true}"#
            )
            .status == 200)
        let kernel = service.simulated.kernel
        let cxl = try #require(BDF(Self.cxl))
        try kernel.holdResetWrites(cxl)
        let pending = try await send("POST", reset, "/gpus/\(Self.cxl)/reset")
        let pendingJob = try pending.decode(JobView.self)
        #expect(try await send("POST", reset, "/gpus/\(Self.cxl)/reset").status == 409)
        try await waitUntil { kernel.heldResetWrites(cxl) == 1 }
        _ = try await get("/jobs/{id}", "/jobs/\(pendingJob.id)")
        #expect(try await send("DELETE", "/jobs/{id}", "/jobs/\(pendingJob.id)").status == 202)
        kernel.releaseResetWrites(cxl)
        _ = try await service.waitForJob(pendingJob.id)
        #expect(try await send("DELETE", "/jobs/{id}", "/jobs/\(pendingJob.id)").status == 409)
        _ = try await get("/jobs/{id}", "/jobs/\(pendingJob.id)")

        // A job the kernel refuses (EBUSY until the deadline), and ones that succeed.
        _ = try await send(
            "PUT", faults, "/simulator/devices/\(Self.h100)/faults", body: #"{"busyWrites": 100000}"#)
        let busy = try await send(
            "POST", reset, "/gpus/\(Self.h100)/reset", body: #"{"deadlineSeconds": 0.5}"#)
        let succeeded = try await send("POST", reset, "/gpus/\(Self.gh200)/reset")
        let bind = try await send("POST", "/gpus/{bdf}/bind", "/gpus/\(Self.nvidiaBound)/bind")
        for job in [busy, succeeded, bind] {
            let id = try job.decode(JobView.self).id
            _ = try await service.waitForJob(id)
            _ = try await get("/jobs/{id}", "/jobs/\(id)")
        }
        let unbind = try await send("POST", "/gpus/{bdf}/unbind", "/gpus/\(Self.nvidiaBound)/unbind")
        _ = try await service.waitForJob(try unbind.decode(JobView.self).id)

        // Desired bindings (the bind and unbind above recorded one), and forgetting one.
        _ = try await get("/bindings", "/bindings")
        let binding = "/bindings/{bdf}"
        #expect(try await send("DELETE", binding, "/bindings/\(Self.nvidiaBound)").status == 200)
        #expect(try await send("DELETE", binding, "/bindings/\(Self.nvidiaBound)").status == 404)
        #expect(try await send("DELETE", binding, "/bindings/nonsense").status == 400)

        // An escalating reset: the ladder of a dry run, and a job with its rungs.
        _ = try await send(
            "POST", reset, "/gpus/\(Self.h100)/reset", body: #"{"method": "escalate", "dryRun": true}"#)
        let escalate = try await send(
            "POST", reset, "/gpus/\(Self.gh200)/reset", body: #"{"method": "escalate"}"#)
        _ = try await service.waitForJob(try escalate.decode(JobView.self).id)
        _ = try await get("/jobs/{id}", "/jobs/\(try escalate.decode(JobView.self).id)")
        #expect(try await get("/jobs/{id}", "/jobs/no-such-job").status == 404)

        // The lists, a page with `next` and one without, and their refusals.
        _ = try await get("/jobs", "/jobs")
        let page = try await get("/jobs", "/jobs?limit=1")
        #expect(page.text.contains(#""next":"#))
        _ = try await get("/jobs", "/jobs?gpu=\(Self.gh200)&state=succeeded")
        #expect(try await get("/jobs", "/jobs?limit=0").status == 400)
        #expect(try await get("/jobs", "/jobs?before=nonsense").status == 400)
        _ = try await get("/gpus/{bdf}/resets", "/gpus/\(Self.gh200)/resets")
        _ = try await get("/gpus/{bdf}/resets", "/gpus/\(Self.h100)/resets?limit=1")
        _ = try await get("/audit", "/audit")
        _ = try await get("/audit", "/audit?limit=2")
        #expect(try await get("/audit", "/audit?before=0").status == 400)

        // The layouts again, now with snapshots of reset GPUs.
        let application = service.application
        _ = try await offPool { try application.inventory.refresh() }
        _ = try await get("/gpus/{bdf}/layout", "/gpus/\(Self.gh200)/layout")

        // The head gate's own answers.
        let client = service.client
        let version = try await offPool {
            try client.exchange([Array("GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)])
        }
        #expect(version.status == 505)
        try recorder.save("GET", "/healthz", version)
        let hugeHead = try await offPool {
            try client.request(
                "GET", "/healthz", headers: [("X-Padding", String(repeating: "p", count: 40_000))])
        }
        #expect(hugeHead.status == 431)
        try recorder.save("GET", "/healthz", hugeHead)

        // The text answers: the metrics after those jobs, and the event stream replayed from its start
        // (it ends on its own after a second).
        let metrics = try await get("/metrics", "/metrics")
        #expect(metrics.status == 200 && metrics.text.contains("graceapi_resets_total"))
        let events = try await get("/events", "/events?lastEventId=0&maxSeconds=1")
        #expect(events.status == 200 && events.text.contains("event: job.finished"))
        try await saveGuardedAnswers(recorder)
        try saveBareGPU(recorder)
        try await saveH200Answers(recorder)
    }

    /// The real H200's answers, from its capture: the host where the contract first broke.
    private func saveH200Answers(_ recorder: Recorder) async throws {
        let host = try SimulatedHost.createTemporary(
            prefix: "graceapi-h200contract", from: try CaptureServiceTests.h200())
        let service = try await RunningService.start(host: host)
        try recorder.save("GET", "/gpus", try await service.get("/gpus"))
        try recorder.save("GET", "/gpus/{bdf}", try await service.get("/gpus/0000:00:06.0"))
        try recorder.save("GET", "/gpus/{bdf}/layout", try await service.get("/gpus/0000:00:06.0/layout"))
        let refused = try await service.send("POST", "/gpus/0000:00:06.0/reset", body: #"{"dryRun": true}"#)
        #expect(refused.status == 200)
        try recorder.save("POST", "/gpus/{bdf}/reset", refused)
    }

    /// The refusals of access control: 401, 403, 421 and 429 on a service that checks them.
    private func saveGuardedAnswers(_ recorder: Recorder) async throws {
        let guarded = try await GuardedService.start(mutationsPerMinute: 1)
        try recorder.save("GET", "/gpus", try await guarded.request("GET", "/gpus"))
        try recorder.save(
            "GET", "/gpus",
            try await guarded.request("GET", "/gpus", headers: [("Authorization", "Bearer grace_nonsense")]))
        let reset = "/gpus/\(Self.h100)/reset"
        try recorder.save(
            "POST", "/gpus/{bdf}/reset",
            try await guarded.request("POST", reset, headers: guarded.bearer(.viewer)))
        try recorder.save(
            "GET", "/audit", try await guarded.request("GET", "/audit", headers: guarded.bearer(.operator)))
        let dryRun = #"{"dryRun": true}"#
        let json = [("Content-Type", "application/json")]
        let first = try await guarded.request(
            "POST", reset, headers: guarded.bearer(.admin) + json, body: dryRun)
        #expect(first.status == 200)
        let limited = try await guarded.request(
            "POST", reset, headers: guarded.bearer(.admin) + json, body: dryRun)
        #expect(limited.status == 429)
        try recorder.save("POST", "/gpus/{bdf}/reset", limited)
        let misdirected = try await offPool { [port = guarded.service.application.port ?? 0] in
            try RawHTTPClient(port: port).exchange([
                Array("GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".utf8)
            ])
        }
        #expect(misdirected.status == 421)
        try recorder.save("GET", "/healthz", misdirected)
    }

    /// A GPU as a real host can show one: nothing optional known. Its bodies come from the snapshot
    /// that serves them, so they are the bytes graced would send.
    private func saveBareGPU(_ recorder: Recorder) throws {
        let snapshot = InventorySnapshot(gpus: [Self.bareGPU], layoutHistory: [:], takenAtMs: 0)
        let bdf = Self.bareGPU.bdf
        let bodies: [(String, InventorySnapshot.Body?)] = [
            ("/gpus", snapshot.list), ("/gpus/{bdf}", snapshot.details[bdf]),
            ("/gpus/{bdf}/layout", snapshot.layouts[bdf]?.body),
        ]
        for (template, body) in bodies {
            let body = try #require(body)
            try recorder.save(
                Answer(
                    method: "GET", path: template, status: 200,
                    headers: ["Content-Type": "application/json", "ETag": body.etag],
                    body: String(decoding: body.bytes, as: UTF8.self)))
        }
    }

    static let bareGPU = GPUDevice(
        bdf: "0000:01:00.0", vendorId: "0x10de", deviceId: "0x2335", subsystemVendorId: "0x10de",
        subsystemDeviceId: "0x18be", vendorName: "NVIDIA Corporation", deviceName: "Device 2335",
        nameSource: .unnamed,
        classCode: "0x030200", revision: "0xa1", driver: nil, driverOverride: nil, iommuGroup: nil,
        numaNode: nil,
        parentBridge: nil,
        link: PCILink(currentSpeed: nil, currentWidth: nil, maxSpeed: nil, maxWidth: nil), resetMethods: [],
        readinessProbe: .pci, bars: [], memory: nil, state: .notReady)

    @Test("an answer has a key for every stored property of the value, null when it is nil")
    func nilIsNull() throws {
        let group = IOMMUGroup(id: 3, members: [IOMMUGroup.Member(bdf: "0000:01:00.0", driver: nil)])
        var gpu = Self.bareGPU
        gpu.iommuGroup = group
        try expectEveryKey(Self.bareGPU)
        try expectEveryKey(gpu)
        try expectEveryKey(group.members[0])
        try expectEveryKey(Self.bareGPU.link)
    }

    /// Field-agnostic: the keys are the stored properties (a wrapper's storage `_name` as `name`),
    /// so a property added later is covered without touching this test.
    private func expectEveryKey(_ value: some Encodable) throws {
        let object = try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(value))
        for child in Mirror(reflecting: value).children {
            let label = try #require(child.label)
            let key = label.hasPrefix("_") ? String(label.dropFirst()) : label
            #expect(object[key] != nil, "\(type(of: value)).\(key) is left out of its JSON")
        }
    }
}

/// Any JSON value, to look at an encoded object's keys.
enum JSONValue: Decodable, Equatable {
    case null
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
            return
        }
        self = .other
    }
}
