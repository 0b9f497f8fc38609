import Synchronization

/// Keeps the audit trail's cost of refused requests bounded: a refusal costs its sender nothing, so
/// one anonymous client looping on `POST` would otherwise add a synced row per request (1.4 GB an
/// hour measured, issue 17).
///
/// The first refusal of a kind (same account, action, status and channel) in a window is written at
/// once, as before; the same refusals that follow within the window are counted in memory, and when
/// the window closes the first line is completed with how many more there were and when the last came
/// (`repeated`, `lastAt`). So each kind costs at most one row per window, and nothing is lost: every
/// refusal is in some line's count. At most `maxOpen` kinds are followed at once; refusals of further
/// kinds (many addresses, many invented paths) share one overflow line per window.
final class RefusalFolding: Sendable {
    struct Key: Hashable, Sendable {
        var account: String
        var action: String
        var status: Int
        var channel: String

        /// The one kind every refusal beyond `maxOpen` kinds is counted under.
        static let overflow = Key(account: "", action: "", status: 0, channel: "")
    }

    /// A window whose first line must now be completed with its count.
    struct Closed: Sendable, Equatable {
        var rowId: Int64
        var repeated: Int
        var lastAtMs: Int64
    }

    enum Decision: Equatable {
        /// The first of its kind in this window: write a line, then `opened(_:rowId:)`.
        case write(Key)
        /// Counted in the window's first line.
        case folded
    }

    private struct Window {
        var rowId: Int64?
        var openedAtMs: Int64
        var lastAtMs: Int64
        var repeated = 0
    }

    private struct State {
        var open: [Key: Window] = [:]
        var lastSweepMs: Int64 = 0
    }

    let windowMs: Int64
    let maxOpen: Int
    private let state = Mutex(State())

    init(windowMs: Int64 = 60_000, maxOpen: Int = 1024) {
        self.windowMs = max(1, windowMs)
        self.maxOpen = max(1, maxOpen)
    }

    /// Decides for one refusal at `nowMs`; `closed` are the windows that ended meanwhile (looked for
    /// at most once a second), whose lines the caller completes.
    func admit(_ key: Key, nowMs: Int64) -> (decision: Decision, closed: [Closed]) {
        state.withLock { state in
            var closed: [Closed] = []
            if nowMs - state.lastSweepMs >= 1000 {
                state.lastSweepMs = nowMs
                closed = Self.closeExpired(&state, before: nowMs - windowMs)
            }
            var key = key
            if state.open[key] == nil && state.open.count >= maxOpen { key = .overflow }
            if var window = state.open[key], nowMs - window.openedAtMs < windowMs {
                window.repeated += 1
                window.lastAtMs = nowMs
                state.open[key] = window
                return (.folded, closed)
            }
            if let ended = state.open[key], let done = Self.closed(ended) { closed.append(done) }
            state.open[key] = Window(openedAtMs: nowMs, lastAtMs: nowMs)
            return (.write(key), closed)
        }
    }

    /// The line written for the window `admit` opened for `key`.
    func opened(_ key: Key, rowId: Int64) {
        state.withLock { $0.open[key]?.rowId = rowId }
    }

    /// The windows opened before `nowMs - windowMs`, closed (the periodic flush).
    func closeExpired(nowMs: Int64) -> [Closed] {
        state.withLock { Self.closeExpired(&$0, before: nowMs - windowMs) }
    }

    /// Every window, closed (at shutdown): nothing counted is lost.
    func closeAll() -> [Closed] {
        state.withLock { state in
            defer { state.open.removeAll() }
            return state.open.values.compactMap(Self.closed)
        }
    }

    /// Kinds followed now (for tests and the soak: bounded by `maxOpen` + 1).
    var openCount: Int { state.withLock { $0.open.count } }

    private static func closeExpired(_ state: inout State, before cutoffMs: Int64) -> [Closed] {
        var closed: [Closed] = []
        for (key, window) in state.open where window.openedAtMs <= cutoffMs {
            state.open[key] = nil
            if let done = Self.closed(window) { closed.append(done) }
        }
        return closed
    }

    /// Only a window whose line was written and that counted more refusals needs its line completed.
    private static func closed(_ window: Window) -> Closed? {
        guard let rowId = window.rowId, window.repeated > 0 else { return nil }
        return Closed(rowId: rowId, repeated: window.repeated, lastAtMs: window.lastAtMs)
    }
}
