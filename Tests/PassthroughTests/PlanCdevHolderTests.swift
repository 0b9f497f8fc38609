import Testing

@testable import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Holders through the VFIO cdev interface")
struct PlanCdevHolderTests {
    /// A VM on iommufd opens `/dev/vfio/devices/vfioN`, never `/dev/vfio/<group>`: the plan must see it.
    @Test("a process holding the device's cdev node makes a reset refused as held, naming it")
    func cdevHolder() throws {
        try withDemoHost { host in
            let gh200 = BDF("0009:01:00.0")!
            let device = try #require(host.root.resolve(host.root.device(gh200)))
            #expect(mkdir(device + "/vfio-dev", 0o755) == 0 && mkdir(device + "/vfio-dev/vfio3", 0o755) == 0)
            let process = host.procRoot + "/777"
            #expect(mkdir(process, 0o755) == 0 && mkdir(process + "/fd", 0o755) == 0)
            #expect(symlink("/dev/vfio/devices/vfio3", process + "/fd/5") == 0)
            let comm = open(process + "/comm", O_WRONLY | O_CREAT, 0o644)
            _ = write(comm, "qemu-iommufd\n", 13)
            close(comm)

            let topology = HostTopology(root: host.root)
            #expect(topology.vfioNodes(gh200).contains("/dev/vfio/devices/vfio3"))
            let plan = ResetPlanner(root: host.root, processes: ProcessTable(procRoot: host.procRoot)).plan(
                gh200)
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .held)
            #expect(refusal.holders.flatMap(\.holders).map(\.pid) == [777])
            #expect(refusal.message.contains("777"))

            // Without that process the same reset is planned.
            unlink(process + "/fd/5")
            #expect(
                ResetPlanner(root: host.root, processes: ProcessTable(procRoot: host.procRoot)).plan(gh200)
                    .refusal == nil)
        }
    }
}
