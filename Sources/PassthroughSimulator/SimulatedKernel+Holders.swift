import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// Simulated processes and the VFIO groups they hold.
///
/// A holder is what QEMU is to a passed-through GPU: a process with `/dev/vfio/<group>` open. The
/// service finds holders by scanning `<procRoot>/<pid>/fd`; the kernel keeps every VFIO-bound device
/// of a held group awake (D0), as an open VFIO device holds a runtime PM reference.
extension SimulatedKernel {
    var procfs: SimulatedProcfs { SimulatedProcfs(path: procRoot) }

    /// The host booted again, as far as anything reading `boot_id` can tell (the devices' state is
    /// not touched: tests set that up themselves).
    public func simulateReboot() throws(KernelError) {
        try procfs.newBoot()
    }

    /// Makes process `pid` (created if new, with stdin/stdout/stderr on /dev/null) open the VFIO
    /// container, if it has not yet, and `/dev/vfio/<group>`. Works whether or not the group exists,
    /// as opening a stale path would simply have failed on the real host: the caller decides.
    public func addHolder(pid: Int32, command: String, group: Int) throws(KernelError) {
        guard group >= 0 else { throw KernelError(.invalidArgument, path: "/dev/vfio/\(group)") }
        try change(pid: pid, command: command) { $0.openGroup(group) }
    }

    /// A process that holds nothing (a shell, a daemon): what a holder scan must skip.
    public func addProcess(pid: Int32, command: String) throws(KernelError) {
        try change(pid: pid, command: command) { _ in }
    }

    /// The process exits: its procfs folder goes and the groups it held may suspend. ESRCH when no
    /// simulated process has that id.
    public func removeHolder(pid: Int32) throws(KernelError) {
        try state.withLock { (state: inout State) throws(KernelError) -> Void in
            guard let process = state.processes.removeValue(forKey: pid) else {
                throw KernelError(code: ESRCH, path: "\(pid)")
            }
            try procfs.remove(pid: pid)
            for group in Set(process.groups).sorted() { try renderGroup(group, &state) }
        }
    }

    /// The ids of the simulated processes holding the group, sorted.
    public func holders(ofGroup group: Int) -> [Int32] {
        state.withLock { state in
            state.processes.filter { $0.value.holds(group: group) }.keys.sorted()
        }
    }

    private func change(pid: Int32, command: String, _ body: (inout SimulatedProcess) -> Void)
        throws(KernelError)
    {
        guard pid > 0 else { throw KernelError(.invalidArgument, path: "\(pid)") }
        try state.withLock { (state: inout State) throws(KernelError) -> Void in
            var process = state.processes[pid] ?? SimulatedProcess(command: command)
            process.rename(command)
            body(&process)
            try procfs.write(pid: pid, process)
            state.processes[pid] = process
            for group in Set(process.groups).sorted() { try renderGroup(group, &state) }
        }
    }
}
