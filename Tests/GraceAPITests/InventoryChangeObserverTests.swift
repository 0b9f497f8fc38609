import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

@Suite struct InventoryChangeObserverTests {
    private static func gpus() async throws -> [GPUDevice] {
        let service = try await RunningService.start()
        let gpus = service.application.inventory.snapshot.gpus
        try #require(gpus.count >= 3)
        return gpus
    }

    @Test func reportsAddedRemovedDriverAndLayoutChanges() async throws {
        let old = try await Self.gpus()
        var new = old
        let removed = new.removeFirst()  // gone from the list
        new[0].state = .missing  // listed, but missing: also removed
        new[1].driver = new[1].driver == "vfio-pci" ? nil : "vfio-pci"
        new[1].bars[0].size *= 2
        let changes = InventoryChangeObserver.changes(from: old, to: new)
        #expect(
            changes.map { "\($0.type.rawValue) \($0.gpu)" } == [
                "inventory.removed \(removed.bdf)", "inventory.removed \(old[1].bdf)",
                "inventory.driver_changed \(old[2].bdf)", "inventory.layout_drift \(old[2].bdf)",
            ])
        #expect(changes[2].payload == .driver(DriverChangedPayload(from: old[2].driver, to: new[1].driver)))
        guard case .layout(let drift) = changes[3].payload else {
            Issue.record("no layout payload")
            return
        }
        #expect(!drift.changes.isEmpty)
        // And back: the removed ones are added again (the layout change reverts as a drift too).
        let back = InventoryChangeObserver.changes(from: new, to: old)
        #expect(
            back.map(\.type) == [
                .inventoryAdded, .inventoryAdded, .inventoryDriverChanged, .inventoryLayoutDrift,
            ])
        #expect(back[0].payload == .device(InventoryDevicePayload(removed)))
        #expect(InventoryChangeObserver.changes(from: old, to: old).isEmpty)
    }
}
