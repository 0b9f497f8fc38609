import Synchronization

/// Who wants to hear of each job that ended, per engine: the Application registers its
/// `jobFinished` here, and the engine's finalize calls `notify`. Keyed by engine, so several
/// services in one process (tests) count their own jobs only.
///
/// A stop-gap while the job engine is being rewritten: the engine will take the observer itself,
/// and this table goes.
enum JobFinishedHooks {
    private static let table = Mutex<[ObjectIdentifier: @Sendable (Job) -> Void]>([:])

    static func register(_ hook: @escaping @Sendable (Job) -> Void, for engine: JobEngine) {
        table.withLock { $0[ObjectIdentifier(engine)] = hook }
    }

    static func unregister(_ engine: JobEngine) {
        _ = table.withLock { $0.removeValue(forKey: ObjectIdentifier(engine)) }
    }

    static func notify(_ engine: JobEngine, _ job: Job) {
        table.withLock { $0[ObjectIdentifier(engine)] }?(job)
    }
}
