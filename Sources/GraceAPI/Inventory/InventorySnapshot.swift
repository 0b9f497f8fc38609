import Passthrough
import Store

/// The API's view of the host at one moment, with every GET body encoded once, when the snapshot is
/// built, so that reads on the HTTP threads only copy bytes.
public struct InventorySnapshot: Sendable {
    public struct Body: Sendable {
        public let bytes: [UInt8]
        public let etag: String
        init(_ value: some Encodable) {
            bytes = JSON.encode(value)
            etag = ETag.of(bytes)
        }
    }

    public let gpus: [GPUDevice]
    public let takenAtMs: Int64
    let list: Body
    let details: [String: Body]
    let layouts: [String: Body]

    init(gpus: [GPUDevice], layoutHistory: [String: [LayoutSnapshot]], takenAtMs: Int64) {
        self.gpus = gpus
        self.takenAtMs = takenAtMs
        list = Body(GPUList(items: gpus))
        var details: [String: Body] = [:]
        var layouts: [String: Body] = [:]
        for gpu in gpus {
            details[gpu.bdf] = Body(gpu)
            layouts[gpu.bdf] = Body(
                LayoutView(
                    bdf: gpu.bdf, current: RecordedLayout(gpu),
                    snapshots: (layoutHistory[gpu.bdf] ?? []).map(LayoutView.Snapshot.init)))
        }
        self.details = details
        self.layouts = layouts
    }

    static let empty = InventorySnapshot(gpus: [], layoutHistory: [:], takenAtMs: 0)

    public func gpu(_ bdf: String) -> GPUDevice? { gpus.first { $0.bdf == bdf } }
}

struct GPUList: Encodable {
    var items: [GPUDevice]
}

/// `GET /gpus/{bdf}/layout`: the layout now and the recorded snapshots, newest first.
struct LayoutView: Encodable {
    struct Snapshot: Encodable {
        var id: Int64
        var takenAt: String
        var drift: Bool
        var changes: String?
        var layout: RecordedLayout?

        init(_ record: LayoutSnapshot) {
            id = record.id
            takenAt = Timestamp.rfc3339(ms: record.takenAtMs)
            drift = record.drift
            changes = record.changeSummary
            layout = try? JSON.decode(RecordedLayout.self, from: Array(record.layoutJSON.utf8))
        }
    }
    var bdf: String
    var current: RecordedLayout
    var snapshots: [Snapshot]
}
