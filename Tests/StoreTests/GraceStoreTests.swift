import Dispatch
import Synchronization
import Testing

@testable import Store

private func gpu(
    _ bdf: String = "0000:0a:00.0", device: String = "0x2236", subsystemDevice: String = "0x1482"
) -> DeviceIdentity {
    DeviceIdentity(
        bdf: bdf, vendorId: "0x10de", deviceId: device, subsystemVendorId: "0x10de",
        subsystemDeviceId: subsystemDevice)
}

@Suite struct GraceStoreDeviceTests {
    @Test func schemaIsAtTheLatestVersion() throws {
        let store = try GraceStore(path: ":memory:")
        #expect(try store.database.userVersion() == GraceSchema.migrations.count)
        let tables = try store.database.withConnection { connection in
            try connection.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
                $0.string(at: 0) ?? ""
            }
        }
        #expect(
            tables == [
                "audit_log", "desired_bindings", "devices", "events", "job_attempts", "job_phases", "jobs",
                "layout_snapshots", "reboot_verdicts", "sqlite_sequence",
            ])
    }

    @Test func rebootVerdictsAreReplacedAndLifted() throws {
        let store = try GraceStore(path: ":memory:")
        let boot = "6a0c9d2e-1b7f-4c4e-9a51-0f3f2b8d7e11"
        try store.saveRebootVerdict(RebootVerdict(bdf: "0009:01:00.0", bootId: boot, jobId: "a", atMs: 1))
        try store.saveRebootVerdict(RebootVerdict(bdf: "0009:01:00.0", bootId: boot, jobId: "b", atMs: 2))
        #expect(
            try store.rebootVerdicts() == [
                RebootVerdict(bdf: "0009:01:00.0", bootId: boot, jobId: "b", atMs: 2)
            ])
        #expect(try store.deleteRebootVerdict(bdf: "0009:01:00.0"))
        #expect(try !store.deleteRebootVerdict(bdf: "0009:01:00.0"))
        #expect(try store.rebootVerdicts().isEmpty)
    }

    @Test func sameIdentityKeepsItsRowAndWidensTheSeenWindow() throws {
        let store = try GraceStore(path: ":memory:")
        let first = try store.upsertDevice(gpu(), seenAtMs: 1_000)
        #expect(first.identity == gpu())
        #expect(first.firstSeenMs == 1_000 && first.lastSeenMs == 1_000)

        let again = try store.upsertDevice(gpu(), seenAtMs: 2_000)
        #expect(again.id == first.id)
        #expect(again.firstSeenMs == 1_000 && again.lastSeenMs == 2_000)

        // A late report of an earlier scan must not move last_seen backwards.
        let late = try store.upsertDevice(gpu(), seenAtMs: 500)
        #expect(late.id == first.id)
        #expect(late.firstSeenMs == 500 && late.lastSeenMs == 2_000)

        // Hex case does not make a new device.
        let upper = try store.upsertDevice(gpu(device: "0x2236".uppercased()), seenAtMs: 2_500)
        #expect(upper.id == first.id)
        #expect(try store.database.scalar("SELECT count(*) FROM devices") == .integer(1))
    }

    @Test func differentDeviceAtTheSameBDFIsANewRow() throws {
        let store = try GraceStore(path: ":memory:")
        let old = try store.upsertDevice(gpu(device: "0x2236"), seenAtMs: 1_000)
        let swapped = try store.upsertDevice(gpu(device: "0x2330"), seenAtMs: 2_000)
        #expect(swapped.id != old.id)
        #expect(try store.device(bdf: "0000:0a:00.0") == swapped)

        let otherSubsystem = try store.upsertDevice(gpu(subsystemDevice: "0x16c1"), seenAtMs: 3_000)
        #expect(otherSubsystem.id != old.id && otherSubsystem.id != swapped.id)

        // The original card back in the slot is the original row again.
        let back = try store.upsertDevice(gpu(device: "0x2236"), seenAtMs: 4_000)
        #expect(back.id == old.id)
        #expect(try store.device(bdf: "0000:0A:00.0")?.id == old.id)
        #expect(try store.device(id: swapped.id) == swapped)
        #expect(try store.device(bdf: "0000:0b:00.0") == nil)
    }
}

@Suite struct GraceStoreLayoutTests {
    @Test func firstSnapshotHasNoDriftAndIdenticalLayoutIsNotANewRow() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(gpu(), seenAtMs: 1)
        var described = 0

        let first = try store.recordLayout(deviceId: device.id, layoutJSON: #"{"bars":[1]}"#, takenAtMs: 10) {
            _ in
            described += 1
            return "unexpected"
        }
        #expect(first.isNew)
        #expect(first.snapshot.drift == false)
        #expect(first.snapshot.changeSummary == nil)
        #expect(first.snapshot.takenAtMs == 10)

        let same = try store.recordLayout(deviceId: device.id, layoutJSON: #"{"bars":[1]}"#, takenAtMs: 20) {
            _ in
            described += 1
            return "unexpected"
        }
        #expect(same.isNew == false)
        #expect(same.snapshot == first.snapshot)
        #expect(described == 0)
        #expect(try store.layoutHistory(deviceId: device.id, limit: 10).count == 1)
    }

    @Test func changedLayoutIsDriftWithTheSummary() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(gpu(), seenAtMs: 1)
        let layouts = [#"{"bar1":"16G"}"#, #"{"bar1":"32G"}"#, #"{"bar1":"16G"}"#]
        var previousSeen: [String] = []
        for (offset, layout) in layouts.enumerated() {
            try store.recordLayout(deviceId: device.id, layoutJSON: layout, takenAtMs: Int64(100 + offset)) {
                previous in
                previousSeen.append(previous)
                return "changed from \(previous)"
            }
        }
        #expect(previousSeen == [layouts[0], layouts[1]])

        let history = try store.layoutHistory(deviceId: device.id, limit: 10)
        #expect(history.map(\.layoutJSON) == layouts.reversed())
        #expect(history.map(\.takenAtMs) == [102, 101, 100])
        #expect(history.map(\.drift) == [true, true, false])
        #expect(history[0].changeSummary == "changed from \(layouts[1])")
        #expect(history[2].changeSummary == nil)

        #expect(try store.layoutHistory(deviceId: device.id, limit: 2).map(\.takenAtMs) == [102, 101])
        #expect(try store.latestLayout(deviceId: device.id) == history[0])
    }

    @Test func layoutsAreKeptPerDevice() throws {
        let store = try GraceStore(path: ":memory:")
        let a = try store.upsertDevice(gpu("0000:0a:00.0"), seenAtMs: 1)
        let b = try store.upsertDevice(gpu("0000:0b:00.0"), seenAtMs: 1)
        try store.recordLayout(deviceId: a.id, layoutJSON: "{}", takenAtMs: 1) { _ in "" }
        // Same JSON on another device is that device's first snapshot, not a repeat.
        let other = try store.recordLayout(deviceId: b.id, layoutJSON: "{}", takenAtMs: 2) { _ in "" }
        #expect(other.isNew && other.snapshot.drift == false)
        #expect(try store.latestLayout(deviceId: b.id)?.deviceId == b.id)
        #expect(try store.latestLayout(deviceId: 999) == nil)
    }

    @Test func layoutForAnUnknownDeviceViolatesTheForeignKey() throws {
        let store = try GraceStore(path: ":memory:")
        let error = #expect(throws: DatabaseError.self) {
            try store.recordLayout(deviceId: 42, layoutJSON: "{}", takenAtMs: 1) { _ in "" }
        }
        #expect(error?.code == DatabaseError.constraintForeignKey)
    }

    @Test func historySurvivesCloseAndReopen() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("grace.db")
        let deviceId: Int64
        do {
            let store = try GraceStore(path: path)
            deviceId = try store.upsertDevice(gpu(), seenAtMs: 1).id
            try store.recordLayout(deviceId: deviceId, layoutJSON: "[1]", takenAtMs: 10) { _ in "" }
            try store.recordLayout(deviceId: deviceId, layoutJSON: "[2]", takenAtMs: 20) { _ in "1 -> 2" }
        }
        let store = try GraceStore(path: path)
        #expect(try store.database.journalMode() == "wal")
        #expect(try store.device(bdf: "0000:0a:00.0")?.id == deviceId)
        let history = try store.layoutHistory(deviceId: deviceId, limit: 10)
        #expect(history.map(\.layoutJSON) == ["[2]", "[1]"])
        #expect(history.first?.changeSummary == "1 -> 2")
        let repeated = try store.recordLayout(deviceId: deviceId, layoutJSON: "[2]", takenAtMs: 30) { _ in ""
        }
        #expect(repeated.isNew == false)
    }
}

@Suite struct GraceStoreJobTests {
    private func job(
        _ id: String, deviceId: Int64, bdf: String = "0000:0a:00.0", state: String = "queued",
        createdAtMs: Int64 = 1_000
    ) -> JobRecord {
        JobRecord(
            id: id, kind: "reset", deviceId: deviceId, bdf: bdf, state: state, phase: "queued",
            methodRequested: "auto", deadlineMs: createdAtMs + 30_000, idempotencyKey: "key-\(id)",
            requestJSON: #"{"method":"auto"}"#, createdAtMs: createdAtMs)
    }

    @Test func jobRoundTripsWithPhasesAndAttempts() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(gpu(), seenAtMs: 1)
        var expected = job("6f1c0e9a-0000-4000-8000-000000000001", deviceId: device.id)
        expected.phases = [JobPhase(seq: 1, name: "queued", startedAtMs: 1_000, endedAtMs: 1_001)]
        try store.insertJob(expected)
        #expect(try store.job(id: expected.id) == expected)

        let phase = try store.appendPhase(jobId: expected.id, name: "unbind", startedAtMs: 1_002)
        #expect(phase == JobPhase(seq: 2, name: "unbind", startedAtMs: 1_002))
        try store.endPhase(jobId: expected.id, seq: 2, endedAtMs: 1_050)
        let first = try store.appendAttempt(jobId: expected.id, atMs: 1_010, errno: 16, message: "EBUSY")
        let second = try store.appendAttempt(jobId: expected.id, atMs: 1_020, message: "ok")
        #expect(first.seq == 1 && second.seq == 2)

        let finished = try store.updateJob(
            id: expected.id, state: "succeeded", methodUsed: "flr", resultJSON: #"{"ok":true}"#,
            finishedAtMs: 1_100)

        expected.state = "succeeded"
        expected.phase = "unbind"
        expected.methodUsed = "flr"
        expected.resultJSON = #"{"ok":true}"#
        expected.finishedAtMs = 1_100
        expected.phases.append(JobPhase(seq: 2, name: "unbind", startedAtMs: 1_002, endedAtMs: 1_050))
        expected.attempts = [
            JobAttempt(seq: 1, atMs: 1_010, errno: 16, message: "EBUSY"),
            JobAttempt(seq: 2, atMs: 1_020, errno: nil, message: "ok"),
        ]
        #expect(finished == expected)
        #expect(try store.job(id: expected.id) == expected)
        #expect(try store.job(id: "missing") == nil)
    }

    @Test func unknownJobsAndDuplicatesAreErrors() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(gpu(), seenAtMs: 1)
        try store.insertJob(job("a", deviceId: device.id))

        #expect(throws: GraceStoreError.jobNotFound(id: "b")) { try store.updateJob(id: "b", state: "x") }
        #expect(throws: GraceStoreError.jobNotFound(id: "b")) {
            try store.appendPhase(jobId: "b", name: "x", startedAtMs: 1)
        }
        #expect(throws: GraceStoreError.jobNotFound(id: "b")) {
            try store.appendAttempt(jobId: "b", atMs: 1, message: "x")
        }
        #expect(throws: GraceStoreError.phaseNotFound(jobId: "a", seq: 7)) {
            try store.endPhase(jobId: "a", seq: 7, endedAtMs: 1)
        }
        let duplicate = #expect(throws: DatabaseError.self) {
            try store.insertJob(job("a", deviceId: device.id))
        }
        #expect(duplicate?.isConstraintViolation == true)
        // Another job with a taken Idempotency-Key: the key's owner is named.
        var sameKey = job("d", deviceId: device.id)
        sameKey.idempotencyKey = "key-a"
        #expect(throws: GraceStoreError.idempotencyKeyTaken(key: "key-a", jobId: "a")) {
            try store.insertJob(sameKey)
        }
        let orphan = #expect(throws: DatabaseError.self) { try store.insertJob(job("c", deviceId: 999)) }
        #expect(orphan?.code == DatabaseError.constraintForeignKey)
    }

    @Test func jobsAreListedNewestFirstWithFilters() throws {
        let store = try GraceStore(path: ":memory:")
        let a = try store.upsertDevice(gpu("0000:0a:00.0"), seenAtMs: 1)
        let b = try store.upsertDevice(gpu("0000:0b:00.0"), seenAtMs: 1)
        try store.insertJob(job("j1", deviceId: a.id, state: "succeeded", createdAtMs: 100))
        try store.insertJob(job("j2", deviceId: b.id, bdf: "0000:0b:00.0", state: "failed", createdAtMs: 200))
        try store.insertJob(job("j3", deviceId: a.id, state: "failed", createdAtMs: 300))
        try store.insertJob(job("j4", deviceId: a.id, state: "running", createdAtMs: 400))

        #expect(try store.jobs(limit: 10).map(\.id) == ["j4", "j3", "j2", "j1"])
        #expect(try store.jobs(limit: 2).map(\.id) == ["j4", "j3"])
        #expect(try store.jobs(bdf: "0000:0a:00.0", limit: 10).map(\.id) == ["j4", "j3", "j1"])
        #expect(try store.jobs(state: "failed", limit: 10).map(\.id) == ["j3", "j2"])
        #expect(try store.jobs(bdf: "0000:0a:00.0", state: "failed", limit: 10).map(\.id) == ["j3"])
        #expect(try store.jobs(limit: 10, beforeCreatedAtMs: 300).map(\.id) == ["j2", "j1"])
        #expect(try store.jobs(bdf: "0000:0b:00.0", limit: 10, beforeCreatedAtMs: 200).isEmpty)
    }

    @Test func unfinishedJobsBecomeInterrupted() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(gpu(), seenAtMs: 1)
        try store.insertJob(job("queued", deviceId: device.id, state: "queued", createdAtMs: 100))
        try store.insertJob(job("running", deviceId: device.id, state: "running", createdAtMs: 200))
        try store.insertJob(job("done", deviceId: device.id, state: "succeeded", createdAtMs: 300))
        try store.appendPhase(jobId: "running", name: "reset", startedAtMs: 250)

        let interrupted = try store.markRunningJobsInterrupted(atMs: 9_000)
        #expect(interrupted.map(\.id) == ["queued", "running"])
        #expect(interrupted.allSatisfy { $0.state == "interrupted" && $0.finishedAtMs == 9_000 })
        #expect(interrupted.last?.phases.last?.endedAtMs == nil)

        let done = try store.job(id: "done")
        #expect(done?.state == "succeeded" && done?.finishedAtMs == nil)
        #expect(try store.job(id: "running")?.state == "interrupted")
        #expect(try store.markRunningJobsInterrupted(atMs: 9_500).isEmpty)
    }
}

/// Collects failures from worker threads for the test thread to check.
private final class Failures: Sendable {
    private let list = Mutex<[String]>([])

    func record(_ error: any Error) {
        list.withLock { $0.append("\(error)") }
    }

    var all: [String] { list.withLock { $0 } }
}

/// Runs `body(worker)` on `count` threads at once and waits for all of them.
private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
    let failures = Failures()
    let group = DispatchGroup()
    for worker in 0..<count {
        // A serial queue each: the global concurrent queue would cap the width at the core count.
        DispatchQueue(label: "store-test-\(worker)").async(group: group) {
            do {
                try body(worker)
            } catch {
                failures.record(error)
            }
        }
    }
    group.wait()
    return failures.all
}

@Suite struct GraceStoreConcurrencyTests {
    @Test func eightThreadsAppendAuditRowsThroughOneStore() throws {
        let store = try GraceStore(path: ":memory:")
        let failures = onThreads(8) { worker in
            for index in 0..<50 {
                try store.appendAudit(
                    atMs: Int64(index), actor: "worker-\(worker)", action: "test", target: "row-\(index)")
            }
        }
        #expect(failures == [])
        #expect(try store.database.scalar("SELECT count(*) FROM audit_log") == .integer(400))
        let newest = try store.auditEntries(limit: 5)
        #expect(newest.count == 5)
        #expect(newest.map(\.id) == newest.map(\.id).sorted(by: >))
        let older = try store.auditEntries(limit: 1_000, beforeId: newest[4].id)
        #expect(older.count == 395)
    }

    @Test func threadsOnSeparateConnectionsToOneFileWaitForEachOther() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("shared.db")
        let stores = try (0..<2).map { _ in try GraceStore(path: path) }
        let device = try stores[0].upsertDevice(gpu(), seenAtMs: 0)
        let failures = onThreads(8) { worker in
            let store = stores[worker % 2]
            for index in 0..<25 {
                try store.appendAudit(atMs: Int64(index), actor: "w\(worker)", action: "a", target: "t")
                try store.recordLayout(
                    deviceId: device.id, layoutJSON: "[\(worker), \(index)]", takenAtMs: Int64(index)
                ) { _ in "changed" }
            }
        }
        #expect(failures == [])
        #expect(try stores[1].database.scalar("SELECT count(*) FROM audit_log") == .integer(200))
        #expect(try stores[1].layoutHistory(deviceId: device.id, limit: 1_000).count == 200)
    }
}

@Suite struct GraceStoreLayoutBatchTests {
    private func recordings(_ layouts: [String], at ms: Int64) -> [GraceStore.LayoutRecording] {
        layouts.enumerated().map { index, layout in
            GraceStore.LayoutRecording(
                identity: gpu("0000:0\(index + 1):00.0"), layoutJSON: layout, seenAtMs: ms)
        }
    }

    @Test func aBatchRecordsEveryDeviceItsLayoutAndItsHistory() throws {
        let store = try GraceStore(path: ":memory:")
        let first = try store.recordLayouts(recordings(["[1]", "[2]", "[3]"], at: 10), historyLimit: 5) {
            _, _ in
            Issue.record("a first layout has nothing to differ from")
            return ""
        }
        #expect(first.count == 3)
        #expect(first.allSatisfy { $0.isNew && !$0.snapshot.drift && $0.history == [$0.snapshot] })
        for (index, outcome) in first.enumerated() {
            #expect(try store.device(bdf: "0000:0\(index + 1):00.0")?.id == outcome.device.id)
            #expect(try store.latestLayout(deviceId: outcome.device.id)?.layoutJSON == "[\(index + 1)]")
        }
        // Again with the second changed: one new, drifted snapshot, described with its index.
        let described = Mutex<[Int]>([])
        let second = try store.recordLayouts(recordings(["[1]", "[9]", "[3]"], at: 20), historyLimit: 5) {
            index, previous in
            described.withLock { $0.append(index) }
            return "\(previous) -> [9]"
        }
        #expect(described.withLock { $0 } == [1])
        #expect(second.map(\.isNew) == [false, true, false])
        #expect(second[1].snapshot.drift && second[1].snapshot.changeSummary == "[2] -> [9]")
        #expect(second[1].history.map(\.layoutJSON) == ["[9]", "[2]"])
        #expect(second[0].device.lastSeenMs == 20 && second[0].device.firstSeenMs == 10)
        #expect(try store.recordLayouts([], historyLimit: 5) { _, _ in "" }.isEmpty)
    }

    @Test func aFailingBatchRecordsNothing() throws {
        let store = try GraceStore(path: ":memory:")
        try store.database.execute(
            """
            CREATE TRIGGER refuse BEFORE INSERT ON layout_snapshots WHEN NEW.layout_json = 'boom'
            BEGIN SELECT RAISE(ABORT, 'refused'); END;
            """)
        #expect(throws: (any Error).self) {
            _ = try store.recordLayouts(recordings(["[1]", "[2]", "boom"], at: 10), historyLimit: 5) { _, _ in
                ""
            }
        }
        #expect(try store.device(bdf: "0000:01:00.0") == nil)
        #expect(try store.database.scalar("SELECT count(*) FROM layout_snapshots") == .integer(0))
        // The same batch once the store accepts it again records all of it.
        try store.database.execute("DROP TRIGGER refuse")
        let retried = try store.recordLayouts(recordings(["[1]", "[2]", "boom"], at: 10), historyLimit: 5) {
            _, _ in ""
        }
        #expect(retried.allSatisfy { $0.isNew })
        #expect(try store.database.scalar("SELECT count(*) FROM devices") == .integer(3))
    }
}
