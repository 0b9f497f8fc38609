import GraceHTTP
import Passthrough
import Store
import SystemPackage

/// A job to and from its rows in the store.
extension Job {
    var record: JobRecord {
        JobRecord(
            id: id, kind: kind.rawValue, deviceId: deviceId, bdf: gpu.description, state: state.rawValue,
            phase: phase, methodRequested: methodRequested, methodUsed: methodUsed,
            deadlineMs: details.deadlineMs, idempotencyKey: idempotencyKey, requestJSON: requestJSON,
            resultJSON: JSON.encodeString(details), errorJSON: failure.map(JSON.encodeString),
            createdAtMs: createdAtMs, finishedAtMs: finishedAtMs,
            phases: phases.enumerated().map { index, phase in
                JobPhase(
                    seq: index, name: phase.name, startedAtMs: phase.startedAtMs, endedAtMs: phase.endedAtMs)
            },
            attempts: attempts.enumerated().map { index, attempt in
                JobAttempt(
                    seq: index, atMs: attempt.atMs, returnedAtMs: attempt.returnedAtMs,
                    errno: attempt.errno?.rawValue,
                    message: attempt.message)
            })
    }

    init?(record: JobRecord) {
        guard let kind = JobKind(rawValue: record.kind), let state = JobState(rawValue: record.state),
            let gpu = BDF(record.bdf)
        else { return nil }
        let details =
            record.resultJSON.flatMap { try? JSON.decode(Details.self, from: Array($0.utf8)) }
            ?? Details(readiness: nil, affected: [record.bdf], notes: [], deadlineMs: record.deadlineMs)
        self.init(
            id: record.id, kind: kind, gpu: gpu, deviceId: record.deviceId, state: state,
            phases: record.phases.sorted { $0.seq < $1.seq }.map {
                Phase(name: $0.name, startedAtMs: $0.startedAtMs, endedAtMs: $0.endedAtMs)
            },
            methodRequested: record.methodRequested, methodUsed: record.methodUsed,
            attempts: record.attempts.sorted { $0.seq < $1.seq }.map {
                Attempt(
                    atMs: $0.atMs, returnedAtMs: $0.returnedAtMs, errno: $0.errno.map { Errno(rawValue: $0) },
                    message: $0.message)
            },
            details: details,
            failure: record.errorJSON.flatMap { try? JSON.decode(JobFailure.self, from: Array($0.utf8)) },
            createdAtMs: record.createdAtMs, finishedAtMs: record.finishedAtMs,
            idempotencyKey: record.idempotencyKey, requestJSON: record.requestJSON)
    }
}

extension Job {
    /// Whether the job comes after `cursor` in the store's order (newest first, then by id): the
    /// order pages of `GET /jobs` follow.
    func isOlder(than cursor: GraceStore.JobCursor) -> Bool {
        createdAtMs < cursor.createdAtMs || (createdAtMs == cursor.createdAtMs && id < cursor.id)
    }
}
