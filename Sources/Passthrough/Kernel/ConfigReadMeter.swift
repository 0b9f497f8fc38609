import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Counts the config-space dwords read through a `SysfsRoot`, per function, and can give each one a
/// cost in time.
///
/// On a real host each dword of `config` is a config request the kernel makes (in a KVM guest one
/// that traps to the hypervisor, 20 to 36 µs), and a read of a function in D3cold powers it up first.
/// A simulated tree is plain files, where reads cost nothing and wake nothing; the simulator's root
/// carries a meter so that tests can count what a reader asks of the hardware (none of a suspended
/// GPU's config space, the few dwords a health look needs) and the benchmark can feel what it costs.
public final class ConfigReadMeter: Sendable, Hashable {
    private let counts = Mutex<[String: Int]>([:])
    private let costNanoseconds = Atomic<Int>(0)

    public init() {}

    /// Dwords of `bdf`'s config space read so far.
    public func dwords(_ bdf: BDF) -> Int {
        counts.withLock { $0[bdf.description] ?? 0 }
    }

    /// Dwords read so far, of every function.
    public var totalDwords: Int {
        counts.withLock { $0.values.reduce(0, +) }
    }

    /// Forgets what was counted.
    public func reset() {
        counts.withLock { $0 = [:] }
    }

    /// What each dword costs its reader from now on (0: nothing, the default).
    public func setDwordCost(microseconds: Int) {
        costNanoseconds.store(max(0, microseconds) * 1000, ordering: .relaxed)
    }

    /// A read of `count` bytes at `offset` of the config space of the function whose folder is
    /// `folder` (`bus/pci/devices/<bdf>`, relative to the root): the kernel reads every dword the
    /// range touches.
    func record(folder: some StringProtocol, offset: Int, count: Int) {
        guard count > 0, offset >= 0 else { return }
        let dwords = (offset + count - 1) / 4 - offset / 4 + 1
        let function = String(folder.split(separator: "/").last ?? "")
        counts.withLock { $0[function, default: 0] += dwords }
        let cost = costNanoseconds.load(ordering: .relaxed) * dwords
        if cost > 0 {
            var wait = timespec(tv_sec: cost / 1_000_000_000, tv_nsec: cost % 1_000_000_000)
            var left = timespec()
            while nanosleep(&wait, &left) != 0 && errno == EINTR { wait = left }
        }
    }

    /// A read of the file at `relative` (under the root), counted when it is a `config` file.
    func record(file relative: String, offset: Int, count: Int) {
        guard relative.hasSuffix("/config") else { return }
        record(folder: relative.dropLast("/config".count), offset: offset, count: count)
    }

    public static func == (lhs: ConfigReadMeter, rhs: ConfigReadMeter) -> Bool { lhs === rhs }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(self))
    }
}
