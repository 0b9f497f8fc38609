/// A process that has a file open: the `pid`, its `comm` and the path it holds.
///
/// For VFIO the path is a group's character device (`/dev/vfio/12`): whoever has it open (QEMU, a
/// container runtime) is using the devices of that group, and a reset or unbind would pull them away.
public struct Holder: Hashable, Sendable, Codable, CustomStringConvertible {
    public var pid: Int32
    /// The kernel's short name of the process (`comm`, at most 15 characters).
    public var command: String
    public var path: String

    public init(pid: Int32, command: String, path: String) {
        self.pid = pid
        self.command = command
        self.path = path
    }

    public var description: String { "pid \(pid) (\(command))" }
}
