import Passthrough
import PassthroughSimulator
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// The hand-written GPU body against the generic encoder it replaces: the same bytes for every GPU.
@Suite("GPU body encoder")
struct GPUBodyEncoderTests {
    /// Every GPU of the demo host (with device memory, CXL, H100, a NIC and a drive managed) and of
    /// the captured H200 guest, as a scan describes them.
    static func scannedGPUs() throws -> [GPUDevice] {
        let demo = try SimulatedHost.createTemporary(prefix: "graceapi-body")
        defer { try? demo.removeFiles() }
        let selection = DeviceSelection(classPrefixes: [
            .displayControllers, ClassPrefix("0x01")!, ClassPrefix("0x02")!,
        ])
        var gpus = try HostInventory(
            root: demo.root, selection: selection,
            firmwareMemory: FirmwareMemoryTable(source: "simulator", entries: demo.firmwareMemory)
        ).scan()
        let h200 = try SimulatedHost.createTemporary(
            prefix: "graceapi-body-h200", from: try CaptureServiceTests.h200())
        defer { try? h200.removeFiles() }
        gpus += try HostInventory(root: h200.root).scan()
        return gpus
    }

    @Test("every scanned GPU encodes to the generic encoder's bytes")
    func scanned() throws {
        let gpus = try Self.scannedGPUs()
        #expect(gpus.count >= 5)
        #expect(gpus.contains { $0.memory != nil } && gpus.contains { $0.memory == nil })
        for gpu in gpus {
            #expect(GPUBodyEncoder.encode(gpu) == JSON.encode(gpu), "\(gpu.bdf)")
        }
    }

    @Test("nulls, health findings, odd numbers and every character that needs escaping")
    func edges() throws {
        var gpu = try #require(try Self.scannedGPUs().first { $0.memory != nil })
        var text = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self)
        text += "/\\\"é€🙂\u{2028}"
        gpu.vendorName = text
        gpu.deviceName = ""
        gpu.health = GPUHealth(
            status: .failed, checkedAt: "2026-11-30T05:49:53.154Z",
            reasons: [
                .init(reason: .allOnes, detail: text, since: "2026-11-30T05:49:53.154Z"),
                .init(reason: .aerCorrectable, detail: "3 -> 4", since: "x"),
            ])
        #expect(GPUBodyEncoder.encode(gpu) == JSON.encode(gpu))
        for speed in [2.5, 5, 8, 16, 32, 64, 0.1, 1e21, 123_456.75, -2.5, 0] {
            gpu.link = PCILink(currentSpeed: speed, currentWidth: -1, maxSpeed: nil, maxWidth: Int.max)
            #expect(GPUBodyEncoder.encode(gpu) == JSON.encode(gpu), "\(speed)")
        }
        gpu.bars.append(BAR(index: 5, start: .max, size: 0, is64Bit: false, prefetchable: true))
        gpu.driver = nil
        gpu.driverOverride = nil
        gpu.iommuGroup = nil
        gpu.numaNode = nil
        gpu.parentBridge = nil
        gpu.memory = nil
        gpu.resetMethods = []
        gpu.health = .unknown
        gpu.link = PCILink(currentSpeed: nil, currentWidth: nil, maxSpeed: nil, maxWidth: nil)
        #expect(GPUBodyEncoder.encode(gpu) == JSON.encode(gpu))
        gpu.bars = []
        gpu.iommuGroup = IOMMUGroup(
            id: 0, members: [.init(bdf: "a", driver: nil), .init(bdf: "b", driver: "c")])
        #expect(GPUBodyEncoder.encode(gpu) == JSON.encode(gpu))
    }

    struct List: Encodable { var items: [GPUDevice] }

    /// Every body of the snapshot and its list are the generic encoder's bytes of what it holds.
    static func expectEncoded(_ snapshot: InventorySnapshot) {
        #expect(snapshot.list.bytes == JSON.encode(List(items: snapshot.gpus)))
        for gpu in snapshot.gpus {
            #expect(snapshot.details[gpu.bdf]?.bytes == JSON.encode(gpu), "\(gpu.bdf)")
        }
    }

    @Test("a snapshot built on the last one: health changed alone, other fields, new and gone GPUs")
    func reusedBodies() throws {
        var gpus = try Self.scannedGPUs()
        let first = InventorySnapshot(gpus: gpus, layoutHistory: [:], takenAtMs: 1)
        Self.expectEncoded(first)
        gpus[0].health = GPUHealth(
            status: .degraded, checkedAt: "2026-11-30T06:00:00.000Z",
            reasons: [.init(reason: .linkDegraded, detail: "x8 of x16", since: "2026-11-30T06:00:00.000Z")])
        gpus[1].driver = nil
        gpus[2].health = GPUHealth(status: .ok, checkedAt: "2026-11-30T06:00:05.000Z", reasons: [])
        gpus[2].state = .resetting
        let gone = gpus.removeLast()
        let second = InventorySnapshot(gpus: gpus, layoutHistory: [:], takenAtMs: 2, reusing: first)
        Self.expectEncoded(second)
        #expect(second.details[gone.bdf] == nil)
        // Health back to unknown (shorter than before), and the gone GPU back.
        gpus[0].health = .unknown
        gpus.append(gone)
        let third = InventorySnapshot(gpus: gpus, layoutHistory: [:], takenAtMs: 3, reusing: second)
        Self.expectEncoded(third)
        #expect(third.details[gpus[3].bdf]?.etag == first.details[gpus[3].bdf]?.etag)
    }

    @Test("a layout body is made on request, carried over while unchanged, made again when its history grows")
    func layoutBodies() throws {
        let gpus = try Self.scannedGPUs()
        let bdf = gpus[0].bdf
        let first = InventorySnapshot(gpus: gpus, layoutHistory: [:], takenAtMs: 1)
        let made = try #require(first.layouts[bdf]?.body)
        #expect(first.layouts["0000:ff:1f.7"] == nil)
        #expect(first.gpu(bdf) == gpus[0] && first.gpu("0000:ff:1f.7") == nil)
        let same = InventorySnapshot(gpus: gpus, layoutHistory: [:], takenAtMs: 2, reusing: first)
        #expect(same.layouts[bdf]?.body.etag == made.etag)
        let snapshot = LayoutSnapshot(
            id: 7, deviceId: 1, takenAtMs: 3, layoutJSON: JSON.encodeString(RecordedLayout(gpus[0])),
            drift: false,
            changeSummary: nil)
        let grown = InventorySnapshot(
            gpus: gpus, layoutHistory: [bdf: [snapshot]], takenAtMs: 3, reusing: same)
        let body = try #require(grown.layouts[bdf]?.body)
        #expect(body.etag != made.etag)
        #expect(String(decoding: body.bytes, as: UTF8.self).contains(#""id":7"#))
    }
}
