/// Who has which files open, read from procfs: every `<procRoot>/<pid>/fd/<n>` is a link to what the
/// descriptor refers to.
///
/// The root is a parameter so tests and the simulator can hand in a fake tree of the same shape.
/// Processes come and go during a scan and other users' descriptors are unreadable without root, so
/// anything that cannot be read is skipped, never an error: the scan answers "who holds it, as far as
/// we can see right now".
public struct ProcessTable: Sendable, Hashable {
    public let procRoot: String

    public init(procRoot: String = "/proc") {
        self.procRoot = procRoot
    }

    /// The character device of a VFIO group: a process holding it open is using the group's devices.
    public static func vfioGroupPath(_ group: Int) -> String { "/dev/vfio/\(group)" }

    /// Every (process, path) pair where the process has one of `paths` open, ordered by pid then path.
    /// A process holding the same path through several descriptors is listed once.
    public func holders(ofAny paths: Set<String>) -> [Holder] {
        guard !paths.isEmpty else { return [] }
        let proc = SysfsRoot(path: procRoot)
        var found: Set<Holder> = []
        // Only the numeric entries are processes; `self`, `net` and the rest are not.
        for entry in proc.list("") {
            guard let pid = Int32(entry), pid > 0 else { continue }
            var matched: Set<String> = []
            for descriptor in proc.list("\(entry)/fd") {
                // A vanished process or a closed descriptor reads as no link; skip it.
                guard let target = proc.readLink("\(entry)/fd/\(descriptor)"), paths.contains(target)
                else { continue }
                matched.insert(target)
            }
            guard !matched.isEmpty else { continue }
            // The process may have exited since; keep it with an empty name rather than lose the holder.
            let command = proc.readOptionalString("\(entry)/comm").map(trimmed) ?? ""
            for path in matched { found.insert(Holder(pid: pid, command: command, path: path)) }
        }
        return found.sorted { ($0.pid, $0.path) < ($1.pid, $1.path) }
    }

    private func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
