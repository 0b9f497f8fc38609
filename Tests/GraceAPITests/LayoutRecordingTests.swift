import GraceTestSupport
import Passthrough
import PassthroughSimulator
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// Layouts are recorded after the first answer, a scan's worth in one transaction: all of them, or
/// none and again at the next scan.
@Suite("Layout recording", .serialized)
struct LayoutRecordingTests {
    @Test("a start records every GPU's layout, each GPU with its own first snapshot")
    func everyLayout() async throws {
        let service = try await RunningService.start()
        let gpus = try await service.get("/gpus").decode(GPUListBody.self).items
        #expect(gpus.count >= 5)
        var ids: Set<Int64> = []
        for gpu in gpus {
            let view = try await service.get("/gpus/\(gpu.bdf)/layout").decode(LayoutBody.self)
            #expect(view.snapshots.count == 1 && !view.snapshots[0].drift, "\(gpu.bdf)")
            #expect(view.snapshots.first?.layout == view.current, "\(gpu.bdf)")
            ids.formUnion(view.snapshots.map(\.id))
        }
        #expect(ids.count == gpus.count)
        let store = try GraceStore(path: service.databasePath)
        #expect(
            try store.database.scalar("SELECT count(*) FROM layout_snapshots") == .integer(Int64(gpus.count)))
    }

    @Test("a store that refuses the batch records nothing; the next scan records every layout")
    func retriedAfterFailure() async throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-layoutfail")
        let path = host.folder + "/graced.sqlite"
        let outside = try GraceStore(path: path)
        try outside.database.execute(
            """
            CREATE TRIGGER refuse BEFORE INSERT ON layout_snapshots WHEN NEW.layout_json LIKE '%"bars"%'
            AND (SELECT count(*) FROM layout_snapshots) >= 2 BEGIN SELECT RAISE(ABORT, 'refused'); END;
            """)
        let service = try await RunningService.start(databasePath: path, host: host)
        let gpus = try await service.get("/gpus").decode(GPUListBody.self).items
        #expect(gpus.count > 3)
        // The third insert failed: the first two were rolled back with it.
        #expect(try outside.database.scalar("SELECT count(*) FROM layout_snapshots") == .integer(0))
        #expect(try outside.database.scalar("SELECT count(*) FROM devices") == .integer(0))
        for gpu in gpus {
            #expect(
                try await service.get("/gpus/\(gpu.bdf)/layout").decode(LayoutBody.self).snapshots.isEmpty)
        }
        try outside.database.execute("DROP TRIGGER refuse")
        let inventory = service.application.inventory
        _ = await offPool { try? inventory.refresh() }
        #expect(
            try outside.database.scalar("SELECT count(*) FROM layout_snapshots")
                == .integer(Int64(gpus.count)))
        for gpu in gpus {
            #expect(
                try await service.get("/gpus/\(gpu.bdf)/layout").decode(LayoutBody.self).snapshots.count == 1)
        }
    }
}
