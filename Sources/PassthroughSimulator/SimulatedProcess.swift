import Passthrough

/// A process of the simulated host, as `/proc/<pid>` shows it: its command and its open files.
///
/// Only what a holder scan reads is modelled: `comm` and the targets of the `fd` links.
struct SimulatedProcess: Sendable, Hashable {
    /// `/proc/<pid>/comm` without its newline.
    private(set) var command: String
    /// Descriptor number to the path its link points at.
    private(set) var files: [Int: String]

    static let devNull = "/dev/null"
    /// The VFIO container QEMU opens before any group (legacy type1 interface).
    static let vfioContainer = "/dev/vfio/vfio"

    static func vfioGroup(_ group: Int) -> String { "/dev/vfio/\(group)" }

    /// A process with standard input, output and error open on /dev/null, as a daemon has them.
    init(command: String) {
        self.command = Self.comm(command)
        files = [0: Self.devNull, 1: Self.devNull, 2: Self.devNull]
    }

    /// The kernel keeps the first TASK_COMM_LEN - 1 = 15 bytes of a command name (`qemu-system-aarch64`
    /// reads as `qemu-system-aar`), so a scanner must not expect the full name.
    static func comm(_ command: String) -> String {
        String(decoding: command.utf8.prefix(15), as: UTF8.self)
    }

    mutating func rename(_ command: String) {
        self.command = Self.comm(command)
    }

    /// Opens the group the way QEMU does: the container first (once), then the group.
    mutating func openGroup(_ group: Int) {
        if !files.values.contains(Self.vfioContainer) { open(Self.vfioContainer) }
        open(Self.vfioGroup(group))
    }

    /// `open(2)` takes the lowest free descriptor.
    @discardableResult
    mutating func open(_ path: String) -> Int {
        var fd = 0
        while files[fd] != nil { fd += 1 }
        files[fd] = path
        return fd
    }

    func holds(group: Int) -> Bool { files.values.contains(Self.vfioGroup(group)) }

    /// The groups the process has open, sorted.
    var groups: [Int] {
        files.values.compactMap { path in
            path.hasPrefix("/dev/vfio/") ? Int(path.dropFirst("/dev/vfio/".count)) : nil
        }.sorted()
    }
}
