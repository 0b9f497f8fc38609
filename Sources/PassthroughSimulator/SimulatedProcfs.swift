import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// The simulated host's `/proc`: one folder per simulated process with `comm` and `fd/<n>` links,
/// the two things a holder scan reads.
///
/// The `fd` links are absolute and dangle (`/dev/vfio/6` is the host's, not the simulator's): a
/// scanner reads the link text with readlink(2), as on the real procfs, where following the link is
/// not what tells you the target either.
struct SimulatedProcfs: Sendable {
    /// The folder playing `/proc`.
    let path: String

    private var files: TreeFiles { TreeFiles(root: SysfsRoot(path: path)) }

    /// The folder, and the boot id unless a kernel over the same host wrote one already.
    func makeRoot() throws(KernelError) {
        try files.makeFolders("sys/kernel/random")
        if BootId.read(procRoot: path) == nil { try newBoot() }
    }

    /// A new boot id, as the kernel makes at each boot: 36 characters, a random (version 4) UUID.
    func newBoot() throws(KernelError) {
        let digits = (0..<32).map { index -> Character in
            let value = index == 12 ? 4 : index == 16 ? 8 + Int.random(in: 0..<4) : Int.random(in: 0..<16)
            return Character(String(value, radix: 16))
        }
        let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(digits[$0]) }
        try files.replace(BootId.path, text: groups.joined(separator: "-") + "\n")
    }

    /// Writes (or rewrites) the process's folder.
    func write(pid: Int32, _ process: SimulatedProcess) throws(KernelError) {
        let folder = "\(pid)"
        try files.makeFolders(folder + "/fd")
        // The real fd folder is 0500; 0700 keeps the tree removable by an unprivileged test run.
        chmod(SysfsRoot(path: path).absolute(folder + "/fd"), 0o700)
        try files.replace(folder + "/comm", text: process.command + "\n")
        for (fd, target) in process.files.sorted(by: { $0.key < $1.key }) {
            let link = folder + "/fd/\(fd)"
            let absolute = SysfsRoot(path: path).absolute(link)
            unlink(absolute)
            guard symlink(target, absolute) == 0 else { throw KernelError(code: errno, path: link) }
        }
    }

    /// Removes the process's folder, as its exit does.
    func remove(pid: Int32) throws(KernelError) {
        try files.removeTree("\(pid)")
    }
}
