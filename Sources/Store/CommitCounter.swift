import CSQLite
import Synchronization

/// Counts the write transactions SQLite commits on one connection, through its commit hook: what a
/// test reads to hold the store to a budget of synced writes per request.
final class CommitCounter: Sendable {
    private let commits = Atomic<Int>(0)

    var count: Int { commits.load(ordering: .relaxed) }

    /// Installs the hook on `db`. The counter must outlive the connection (`Database` owns both and
    /// closes the connection first, in its deinit).
    func observe(_ db: OpaquePointer) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = sqlite3_commit_hook(
            db,
            { context in
                guard let context else { return 0 }
                Unmanaged<CommitCounter>.fromOpaque(context).takeUnretainedValue().committed()
                // Zero lets the commit go on.
                return 0
            }, context)
    }

    private func committed() {
        commits.add(1, ordering: .relaxed)
    }
}
