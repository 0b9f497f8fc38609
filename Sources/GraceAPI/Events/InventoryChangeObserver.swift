import Passthrough
import Synchronization

/// Turns successive inventory snapshots into `inventory.*` events: a GPU that appeared or left the
/// bus, whose driver changed, or whose memory layout differs from the one seen before.
///
/// It compares what the API published, so it needs nothing from the inventory's internals; the first
/// snapshot it sees is the baseline (a restart does not announce every GPU as added). Changes that
/// happen and revert between two observations are not seen; jobs publish their own events.
public final class InventoryChangeObserver: Sendable {
    public struct Change: Sendable, Hashable {
        public var type: EventType
        public var gpu: String
        public var payload: Payload
    }

    public enum Payload: Sendable, Hashable, Encodable {
        case device(InventoryDevicePayload)
        case driver(DriverChangedPayload)
        case layout(LayoutDriftPayload)

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .device(let payload): try payload.encode(to: encoder)
            case .driver(let payload): try payload.encode(to: encoder)
            case .layout(let payload): try payload.encode(to: encoder)
            }
        }
    }

    private let previous = Mutex<[GPUDevice]?>(nil)

    public init() {}

    /// The changes from `old` to `new`, GPUs in address order; for each GPU: added or removed, else
    /// a driver change, then a layout drift.
    public static func changes(from old: [GPUDevice], to new: [GPUDevice]) -> [Change] {
        let before = Dictionary(old.map { ($0.bdf, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { ($0.bdf, $0) }, uniquingKeysWith: { first, _ in first })
        var changes: [Change] = []
        for bdf in Set(before.keys).union(after.keys).sorted() {
            let was = before[bdf].flatMap { $0.state == .missing ? nil : $0 }
            let now = after[bdf].flatMap { $0.state == .missing ? nil : $0 }
            switch (was, now) {
            case (nil, let now?):
                changes.append(Change(type: .inventoryAdded, gpu: bdf, payload: .device(.init(now))))
                // A GPU back at its address with another layout than it left with has drifted too.
                if let gone = before[bdf], let drift = drift(gone, now) { changes.append(drift) }
            case (let was?, nil):
                changes.append(Change(type: .inventoryRemoved, gpu: bdf, payload: .device(.init(was))))
            case (let was?, let now?):
                if was.driver != now.driver {
                    changes.append(
                        Change(
                            type: .inventoryDriverChanged, gpu: bdf,
                            payload: .driver(.init(from: was.driver, to: now.driver))))
                }
                if let drift = drift(was, now) { changes.append(drift) }
            case (nil, nil):
                break
            }
        }
        return changes
    }

    private static func drift(_ was: GPUDevice, _ now: GPUDevice) -> Change? {
        let old = RecordedLayout(was)
        let new = RecordedLayout(now)
        guard old != new else { return nil }
        return Change(
            type: .inventoryLayoutDrift, gpu: now.bdf,
            payload: .layout(.init(changes: new.changes(from: old))))
    }

    /// Diffs `snapshot` against the one seen last and publishes the changes to `hub`; returns them.
    @discardableResult
    public func observe(_ snapshot: InventorySnapshot, publishingTo hub: EventHub) -> [Change] {
        let changes = previous.withLock { previous -> [Change] in
            defer { previous = snapshot.gpus }
            guard let old = previous else { return [] }
            return Self.changes(from: old, to: snapshot.gpus)
        }
        for change in changes {
            hub.publish(type: change.type, gpu: change.gpu, payload: change.payload)
        }
        return changes
    }
}
