import Passthrough
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Holders from procfs")
struct HolderTests {
    @Test("a fake proc tree: the VM holding the group is found once, with its command; others are ignored")
    func fakeProc() throws {
        let proc = try FakeProc()
        try proc.add(
            pid: 4242, command: "qemu-system-aar",
            openFiles: ["/dev/null", "/dev/vfio/vfio", "/dev/vfio/10", "/dev/vfio/10", "/dev/kvm"])
        try proc.add(pid: 100, command: "bash", openFiles: ["/dev/pts/0", "/dev/vfio/100"])
        try proc.add(pid: 7, command: "  libvirtd \t", openFiles: ["/dev/vfio/12"])
        // Gone between listing and reading: no fd folder, or fds but no comm any more.
        try proc.folder.makeDirectory("31337")
        try proc.add(pid: 555, command: nil, openFiles: ["/dev/vfio/12"])
        // Not processes.
        try proc.folder.makeDirectory("self/fd")
        try proc.folder.makeDirectory("sys")
        // A descriptor that is not a link reads as nothing.
        try writeText(proc.path + "/100/fd/9", "/dev/vfio/10")

        let table = proc.table
        #expect(
            table.holders(ofAny: [ProcessTable.vfioGroupPath(10)]) == [
                Holder(pid: 4242, command: "qemu-system-aar", path: "/dev/vfio/10")
            ])
        #expect(
            table.holders(ofAny: ["/dev/vfio/10", "/dev/vfio/12"]) == [
                Holder(pid: 7, command: "libvirtd", path: "/dev/vfio/12"),
                Holder(pid: 555, command: "", path: "/dev/vfio/12"),
                Holder(pid: 4242, command: "qemu-system-aar", path: "/dev/vfio/10"),
            ])
        #expect(table.holders(ofAny: ["/dev/vfio/11"]).isEmpty)
        #expect(table.holders(ofAny: []).isEmpty)
        #expect(ProcessTable(procRoot: proc.path + "/missing").holders(ofAny: ["/dev/vfio/10"]).isEmpty)
        #expect(
            Holder(pid: 4242, command: "qemu-system-aar", path: "/dev/vfio/10").description
                == "pid 4242 (qemu-system-aar)")
    }

    @Test("the real /proc shows this test process holding a file it opened")
    func realProc() throws {
        let folder = try TestFolder()
        let path = folder.path + "/held"
        try writeText(path, "x")
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let holders = ProcessTable().holders(ofAny: [path])
        #expect(holders.contains { $0.pid == getpid() && $0.path == path && !$0.command.isEmpty })
    }
}
