import GraceHTTP
import Passthrough
import Store
import Synchronization

/// The API's view of the host at one moment, with every GET body encoded once, when the snapshot is
/// built, so that reads on the HTTP threads only copy bytes.
public struct InventorySnapshot: Sendable {
    public struct Body: Sendable {
        public let bytes: [UInt8]
        public let etag: String
        /// The 200 answer built in libmicrohttpd on the first request for it, then reused: only
        /// bodies someone asks for hold a second copy (at 4096 GPUs the bodies are megabytes).
        private let prepared = PreparedOnce()
        init(_ value: some Encodable) {
            self.init(bytes: JSON.encode(value))
        }
        init(bytes: [UInt8]) {
            self.bytes = bytes
            etag = ETag.of(bytes)
        }

        /// The headers of a GET answer from the snapshot (also of its 304, without the media type).
        static func headers(etag: String, json: Bool) -> [(String, String)] {
            (json ? [("Content-Type", "application/json")] : []) + [
                ("ETag", etag), ("Cache-Control", "no-cache"),
            ]
        }

        /// The 200 answer with this body and its ETag.
        var response: HTTPResponse {
            let headers = Self.headers(etag: etag, json: true)
            var response = HTTPResponse(status: 200, headers: headers, body: bytes)
            response.prepared = prepared.get { PreparedResponse(status: 200, headers: headers, body: bytes) }
            return response
        }
    }

    /// A layout body and what it was built from, so an unchanged one is not encoded again. It is
    /// encoded on its first request: a scan publishes every GPU's layout, few are ever asked for,
    /// and at 4096 GPUs encoding them all was a tenth of the time to the first answer.
    struct LayoutBody: Sendable {
        let layout: RecordedLayout
        let snapshotIDs: [Int64]
        private let encoded: Lazy

        init(layout: RecordedLayout, snapshotIDs: [Int64], make: @escaping @Sendable () -> Body) {
            self.layout = layout
            self.snapshotIDs = snapshotIDs
            encoded = Lazy(make)
        }

        var body: Body { encoded.value }

        private final class Lazy: Sendable {
            private let make: @Sendable () -> Body
            private let made = Mutex<Body?>(nil)
            init(_ make: @escaping @Sendable () -> Body) { self.make = make }
            var value: Body {
                made.withLock { made in
                    if let made { return made }
                    let body = make()
                    made = body
                    return body
                }
            }
        }
    }

    /// Each GPU's body, as a part of the list's bytes: the list is the bodies joined, so holding
    /// both doubled the memory for them (3.7 MB each at 4096 GPUs). A GPU's own `Body` (a copy of
    /// its part, its ETag, its prepared answer) is made on the first request for it.
    final class DetailBodies: Sendable {
        /// Where a GPU's body lies in the list, and its `health` value within the body.
        struct Place: Sendable {
            var body: Range<Int>
            var health: Range<Int>
            /// The GPU's position in the snapshot's `gpus`.
            var position: Int
        }
        private let list: [UInt8]
        private let places: [String: Place]
        private let made = Mutex<[String: Body]>([:])

        init(list: [UInt8], places: [String: Place]) {
            self.list = list
            self.places = places
        }

        /// The GPU's position in the snapshot's `gpus`.
        func position(_ bdf: String) -> Int? { places[bdf]?.position }

        /// The GPU's body bytes, without making its `Body`, and where its health is in them.
        func bytes(_ bdf: String) -> (bytes: ArraySlice<UInt8>, health: Range<Int>)? {
            places[bdf].map { (list[$0.body], $0.health) }
        }

        subscript(bdf: String) -> Body? {
            guard let place = places[bdf] else { return nil }
            return made.withLock { made in
                if let body = made[bdf] { return body }
                let body = Body(bytes: Array(list[place.body]))
                made[bdf] = body
                return body
            }
        }
    }

    /// Each GPU's layout body, made on the first request for it: a scan publishes every GPU, few
    /// layouts are ever asked for, and one made per GPU at each publication cost hundreds of bytes a
    /// GPU and the time to build them. A body made for the last snapshot is carried over while its
    /// layout and history are unchanged.
    final class LayoutBodies: Sendable {
        private let gpus: [GPUDevice]
        private let details: DetailBodies
        private let history: [String: [LayoutSnapshot]]
        private let made: Mutex<[String: LayoutBody]>

        init(
            gpus: [GPUDevice], details: DetailBodies, history: [String: [LayoutSnapshot]],
            carrying previous: LayoutBodies?
        ) {
            self.gpus = gpus
            self.details = details
            self.history = history
            var carried: [String: LayoutBody] = [:]
            for (bdf, body) in previous?.made.withLock({ $0 }) ?? [:] {
                guard let position = details.position(bdf) else { continue }
                if body.layout == RecordedLayout(gpus[position]),
                    body.snapshotIDs == (history[bdf] ?? []).map(\.id)
                {
                    carried[bdf] = body
                }
            }
            made = Mutex(carried)
        }

        subscript(bdf: String) -> LayoutBody? {
            guard let position = details.position(bdf) else { return nil }
            return made.withLock { made in
                if let body = made[bdf] { return body }
                let layout = RecordedLayout(gpus[position])
                let snapshots = history[bdf] ?? []
                let body = LayoutBody(layout: layout, snapshotIDs: snapshots.map(\.id)) {
                    Body(
                        LayoutView(
                            bdf: bdf, current: LayoutView.Layout(layout),
                            snapshots: snapshots.map(LayoutView.Snapshot.init)))
                }
                made[bdf] = body
                return body
            }
        }
    }

    public let gpus: [GPUDevice]
    public let takenAtMs: Int64
    let list: Body
    let details: DetailBodies
    let layouts: LayoutBodies

    /// Builds the bodies, reusing those of `previous` for every GPU that has not changed: a job that
    /// touches one GPU re-encodes that GPU only.
    init(
        gpus: [GPUDevice], layoutHistory: [String: [LayoutSnapshot]], takenAtMs: Int64,
        reusing previous: InventorySnapshot? = nil
    ) {
        self.gpus = gpus
        self.takenAtMs = takenAtMs
        let before = Dictionary(
            (previous?.gpus ?? []).map { ($0.bdf, $0) }, uniquingKeysWith: { first, _ in first })
        // `{"items":[...]}` is the GPU bodies joined: the same bytes an encoder would give, for free.
        var list = Array(#"{"items":["#.utf8)
        var places: [String: DetailBodies.Place] = [:]
        places.reserveCapacity(gpus.count)
        for (index, gpu) in gpus.enumerated() {
            if index > 0 { list.append(UInt8(ascii: ",")) }
            let start = list.count
            let health: Range<Int>
            let old = before[gpu.bdf]
            let reused = old == nil ? nil : previous?.details.bytes(gpu.bdf)
            if let old, let reused, old == gpu {
                list += reused.bytes
                health = reused.health
            } else if let old, let reused, Self.differsInHealthOnly(old, gpu) {
                // The watch's look changed the health alone: the rest of the body is the same bytes.
                let cut = reused.bytes.startIndex
                list += reused.bytes[cut..<cut + reused.health.lowerBound]
                let written = GPUBodyEncoder.health(gpu.health)
                list += written
                list += reused.bytes[(cut + reused.health.upperBound)...]
                health = reused.health.lowerBound..<reused.health.lowerBound + written.count
            } else {
                let encoded = GPUBodyEncoder.encodeMarkingHealth(gpu)
                list += encoded.bytes
                health = encoded.health
            }
            places[gpu.bdf] = DetailBodies.Place(body: start..<list.count, health: health, position: index)
        }
        list += Array("]}".utf8)
        self.list = Body(bytes: list)
        details = DetailBodies(list: list, places: places)
        layouts = LayoutBodies(
            gpus: gpus, details: details, history: layoutHistory, carrying: previous?.layouts)
    }

    /// Whether the two differ, and only in their health.
    private static func differsInHealthOnly(_ old: GPUDevice, _ new: GPUDevice) -> Bool {
        var old = old
        old.health = new.health
        return old == new
    }

    static let empty = InventorySnapshot(gpus: [], layoutHistory: [:], takenAtMs: 0)

    public func gpu(_ bdf: String) -> GPUDevice? { details.position(bdf).map { gpus[$0] } }
}

/// `GET /gpus/{bdf}/layout`: the layout now and the recorded snapshots, newest first.
struct LayoutView: Encodable {
    /// A layout as the API shows it, `memory` null for a GPU without device memory. The stored form
    /// (`RecordedLayout`) leaves it out instead and stays so: layouts are compared byte for byte, and
    /// a new spelling would record a false drift for every such GPU on upgrade.
    struct Layout: Encodable {
        var bars: [BAR]
        @NullEncodable var memory: DeviceMemory?

        init(_ layout: RecordedLayout) {
            bars = layout.bars
            memory = layout.memory
        }
    }

    struct Snapshot: Encodable {
        var id: Int64
        var takenAt: String
        var drift: Bool
        /// What changed; null for the first snapshot, which has nothing to differ from.
        @NullEncodable var changes: String?
        /// Null only when the stored layout cannot be read back.
        @NullEncodable var layout: Layout?

        init(_ record: LayoutSnapshot) {
            id = record.id
            takenAt = Timestamp.rfc3339(ms: record.takenAtMs)
            drift = record.drift
            changes = record.changeSummary
            layout = (try? JSON.decode(RecordedLayout.self, from: Array(record.layoutJSON.utf8))).map(
                Layout.init)
        }
    }
    var bdf: String
    var current: Layout
    var snapshots: [Snapshot]
}
