import Testing

@testable import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

extension SimulatorTests {
    /// Simulated processes in the fake procfs, and the `/dev/vfio` nodes.
    @Suite struct Holders {
        /// The holder scan the service does: every numeric folder, every `fd` link read with readlink(2)
        /// (never followed), `/dev/vfio/<digits>` taken as a group.
        func scan(_ procRoot: String) -> [Int: [Int32]] {
            let proc = SysfsRoot(path: procRoot)
            var holders: [Int: [Int32]] = [:]
            for name in proc.list("") {
                guard let pid = Int32(name) else { continue }
                for fd in proc.list(name + "/fd") {
                    guard let target = proc.readLink(name + "/fd/" + fd), target.hasPrefix("/dev/vfio/"),
                        let group = Int(target.dropFirst("/dev/vfio/".count))
                    else { continue }
                    holders[group, default: []].append(pid)
                }
            }
            return holders.mapValues { $0.sorted() }
        }

        @Test func theDemoHostStartsWithAProcessThatHoldsNothing() throws {
            try withDemoHost { host in
                #expect(host.procRoot == host.folder + "/proc")
                let proc = SysfsRoot(path: host.procRoot)
                // One process, and the kernel's boot id (which a restart of graced keeps, a reboot not).
                #expect(proc.list("") == ["1", "sys"])
                let boot = try #require(BootId.read(procRoot: host.procRoot))
                try host.kernel.simulateReboot()
                #expect(BootId.read(procRoot: host.procRoot).map { $0 != boot } == true)
                let comm = try proc.readBytes("1/comm")
                #expect(comm == Array("systemd\n".utf8))
                #expect(proc.list("1/fd") == ["0", "1", "2"])
                #expect(proc.readLink("1/fd/0") == "/dev/null")
                #expect(scan(host.procRoot).isEmpty)
            }
        }

        @Test func holdersAreRealSymlinksToTheirGroups() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                let proc = SysfsRoot(path: host.procRoot)
                try kernel.addHolder(pid: 4242, command: "qemu-system-aarch64", group: 6)
                // The kernel keeps 15 bytes of the command name.
                #expect(try proc.readBytes("4242/comm") == Array("qemu-system-aar\n".utf8))
                #expect(proc.list("4242/fd") == ["0", "1", "2", "3", "4"])
                var status = stat()
                #expect(lstat(proc.absolute("4242/fd/4"), &status) == 0)
                #expect(status.st_mode & S_IFMT == S_IFLNK)
                #expect(proc.readLink("4242/fd/3") == "/dev/vfio/vfio", "the container comes first")
                #expect(proc.readLink("4242/fd/4") == "/dev/vfio/6")
                #expect(kernel.holders(ofGroup: 6) == [4242])

                try kernel.addHolder(pid: 4242, command: "qemu-system-aarch64", group: 10)
                try kernel.addHolder(pid: 777, command: "cloud-hypervisor", group: 6)
                #expect(proc.readLink("4242/fd/5") == "/dev/vfio/10")
                #expect(proc.readLink("777/fd/4") == "/dev/vfio/6")
                #expect(scan(host.procRoot) == [6: [777, 4242], 10: [4242]])
                #expect(kernel.holders(ofGroup: 6) == [777, 4242])

                try kernel.removeHolder(pid: 4242)
                #expect(!proc.exists("4242"))
                #expect(scan(host.procRoot) == [6: [777]])
                #expect(throws: KernelError(code: ESRCH, path: "4242")) { try kernel.removeHolder(pid: 4242) }
                #expect(throws: KernelError.self) { try kernel.addHolder(pid: 0, command: "x", group: 6) }
                #expect(throws: KernelError.self) { try kernel.addHolder(pid: 9, command: "x", group: -1) }
            }
        }

        @Test func vfioNodesFollowTheBindings() throws {
            try withDemoHost { host in
                let dev = SysfsRoot(path: host.devRoot)
                #expect(host.devRoot == host.folder + "/dev")
                // The container, and the groups with a VFIO-bound member (6 holds the H100 on vfio-pci
                // beside the audio function and the NIC on their own drivers).
                #expect(dev.list("vfio") == ["10", "14", "6", "8", "vfio"])
                let h100 = bdf("0000:c3:00.0")
                try host.kernel.perform(.unbind(h100, driver: "vfio-pci"))
                #expect(!dev.exists("vfio/6"))
                try host.kernel.perform(.driversProbe(h100))
                #expect(dev.exists("vfio/6"), "the override still names vfio-pci")
            }
        }
    }
}
