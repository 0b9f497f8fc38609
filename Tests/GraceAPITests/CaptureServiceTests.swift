import GraceTestSupport
import Passthrough
import PassthroughSimulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Captured hosts served over HTTP: the H200 guest in process, and `graced capture` and
/// `graced serve --simulate --from-capture` as the binaries.
@Suite("Captured hosts over HTTP", .serialized)
struct CaptureServiceTests {
    static let gpu = "0000:00:06.0"

    static func h200() throws -> HostCapture {
        let path = ContractTests.repositoryRoot + "/Tests/Fixtures/h200-kvm-guest/capture.json"
        return try HostCapture.decode(
            try SysfsRoot(path: "/").readBytes(String(path.dropFirst()), limit: 16 << 20))
    }

    @Test("the H200 guest: GET /gpus lists its GPU; a dry-run reset is refused while nvidia holds it")
    func h200() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-h200svc", from: try Self.h200())
        let service = try await RunningService.start(host: host)

        let list = try await service.get("/gpus")
        #expect(list.status == 200)
        let gpus = try list.decode(GPUListBody.self).items
        #expect(gpus.map(\.bdf) == [Self.gpu])
        let gpu = try #require(gpus.first)
        #expect(
            gpu.deviceId == "0x2335" && gpu.driver == "nvidia" && gpu.iommuGroup == nil && gpu.numaNode == nil
        )
        #expect(gpu.bars.map(\.size) == [16 << 20, 256 << 30, 32 << 20])

        let dryRun = try await service.send("POST", "/gpus/\(Self.gpu)/reset", body: #"{"dryRun": true}"#)
        #expect(dryRun.status == 200)
        let body = try dryRun.decode(DryRunBody.self)
        #expect(body.gpu == Self.gpu && body.wouldRun == false && body.plan.method == "flr")
        let refusal = try #require(body.plan.refusal)
        #expect(refusal.code == "held")
        #expect(refusal.holders.map(\.bdf) == [Self.gpu] && refusal.holders.first?.driver == "nvidia")
        #expect(refusal.resolution.contains("bind it to vfio-pci first"))
        #expect(host.kernel.writes.isEmpty)
    }

    @Test("graced capture records the demo tree; graced serve --simulate --from-capture serves the same GPUs")
    func binaries() async throws {
        let demo = try SimulatedHost.createTemporary(prefix: "graceapi-capture")
        defer { try? demo.removeFiles() }
        let graced = ChildProcess.binary("graced")
        let file = demo.folder + "/capture.json"

        let (root, folder) = (demo.root.path, demo.folder)
        let written = try await offPool {
            try ChildProcess.run([graced, "capture", "--sysfs", root, "--out", file], in: folder)
        }
        let count = SimulatedHost.demoFunctions.count
        #expect(
            written.status == 0 && written.output.contains("captured \(count) PCI functions"),
            "\(written.output)")
        // Without --out the JSON alone goes to stdout.
        let printed = try await offPool {
            try ChildProcess.run([graced, "capture", "--sysfs", root], in: folder)
        }
        #expect(printed.status == 0)
        let capture = try HostCapture.decode(Array(printed.output.utf8))
        #expect(capture.devices.count == count && capture.version == HostCapture.currentVersion)

        let daemon = try GracedProcess(
            database: demo.folder + "/graced.sqlite", logPath: demo.folder + "/graced.log",
            access: ["--no-auth", "--from-capture", file])
        defer {
            daemon.killInTeardown(SIGTERM) {
                daemon.simulatorFolder.map { try? TreeFilesCleanup.remove($0) }
            }
        }
        try await daemon.waitUntilServing()
        #expect(daemon.log.contains("replaying the host captured in \(file)"))
        let served = try await daemon.request("GET", "/gpus").decode(GPUListBody.self).items
        let expected = try HostInventory(root: demo.root).scan().map(\.bdf)
        #expect(expected.count == 6 && served.map(\.bdf) == expected)
    }

    @Test("--from-capture without --simulate, and a capture of a folder that is no sysfs tree, are refused")
    func usageErrors() async throws {
        let folder = try SimulatedHost.createTemporary(prefix: "graceapi-capture")
        defer { try? folder.removeFiles() }
        let graced = ChildProcess.binary("graced")
        let (path, proc) = (folder.folder, folder.folder + "/proc")
        let refused = try await offPool {
            try ChildProcess.run([graced, "--from-capture", "capture.json"], in: path)
        }
        #expect(refused.status == 64 && refused.output.contains("--from-capture"))
        #expect(refused.output.contains("add --simulate"))
        let empty = try await offPool {
            try ChildProcess.run([graced, "capture", "--sysfs", proc], in: path)
        }
        #expect(empty.status != 0 && empty.output.contains("not a sysfs tree"))
    }
}

struct DryRunBody: Decodable {
    struct Plan: Decodable {
        var method: String?
        var refusal: Refusal?
    }
    struct Refusal: Decodable {
        var code: String
        var resolution: String
        var holders: [Holder]
    }
    struct Holder: Decodable {
        var bdf: String
        var driver: String?
    }
    var gpu: String
    var plan: Plan
    var wouldRun: Bool
}
