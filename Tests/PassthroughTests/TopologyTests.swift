import Passthrough
import Testing

@Suite("Host topology")
struct TopologyTests {
    @Test("parents, root buses and bridges of the demo host")
    func parents() throws {
        try withDemoHost { host in
            let topology = HostTopology(root: host.root)
            #expect(topology.parentBridge(bdf("0009:01:00.0")) == bdf("0009:00:00.0"))
            #expect(topology.parentBridge(bdf("0000:c3:00.0")) == bdf("0000:c2:00.0"))
            #expect(topology.parentBridge(bdf("0009:00:00.0")) == nil)
            #expect(topology.isOnRootBus(bdf("0009:00:00.0")))
            #expect(!topology.isOnRootBus(bdf("0009:01:00.0")))
            #expect(topology.isBridge(bdf("0000:c2:00.0")) && topology.isBridge(bdf("0009:00:00.0")))
            #expect(!topology.isBridge(bdf("0000:c3:00.0")))
            #expect(topology.classCode(bdf("0000:c3:00.0")) == 0x03_0200)
            #expect(topology.allFunctions().count == 18)
        }
    }

    @Test("a bus reset's reach: the functions behind the parent bridge and everything below them")
    func sharingBus() throws {
        try withDemoHost { host in
            let topology = HostTopology(root: host.root)
            #expect(topology.functionsSharingBus(bdf("0000:c3:00.0")) == [bdf("0000:c3:00.0")])
            #expect(
                topology.functionsSharingBus(bdf("0000:c2:00.0")) == [
                    bdf("0000:c2:00.0"), bdf("0000:c2:01.0"), bdf("0000:c3:00.0"), bdf("0000:c4:00.0"),
                ])
        }
        let small = try TwoFunctionHost(audioDriver: "snd_hda_intel")
        let topology = HostTopology(root: small.root)
        #expect(
            topology.functionsSharingBus(TwoFunctionHost.gpu) == [TwoFunctionHost.gpu, TwoFunctionHost.audio])
        #expect(topology.isOnRootBus(TwoFunctionHost.onRootBus))
    }

    @Test("groups, drivers, overrides, reset methods and IDs; an unknown device reads as nothing")
    func attributes() throws {
        try withDemoHost { host in
            let topology = HostTopology(root: host.root)
            let h100 = bdf("0000:c3:00.0")
            #expect(topology.iommuGroup(h100) == 6)
            #expect(topology.iommuGroupMembers(h100) == [h100, bdf("0000:c4:00.0")])
            #expect(topology.driver(bdf("0000:c4:00.0")) == "mlx5_core")
            #expect(topology.driverOverride(h100) == "vfio-pci")
            #expect(topology.driverOverride(bdf("0019:01:00.0")) == nil)
            #expect(topology.resetMethods(h100) == ["flr", "bus"])
            #expect(
                topology.driverExists("nvgrace_gpu_vfio_pci") && !topology.driverExists("nvgrace_vfio_pci"))
            #expect(!topology.driverExists("../drivers"))
            #expect(
                topology.identity(h100)
                    == PCIIdentity(
                        vendorID: 0x10de, deviceID: 0x2331, subsystemVendorID: 0x10de,
                        subsystemDeviceID: 0x1626, classCode: 0x03_0200))

            let ghost = bdf("0000:ee:00.0")
            #expect(!topology.exists(ghost) && topology.parentBridge(ghost) == nil)
            #expect(!topology.isOnRootBus(ghost) && !topology.isBridge(ghost))
            #expect(topology.iommuGroupMembers(ghost).isEmpty && topology.functionsSharingBus(ghost).isEmpty)
            #expect(topology.resetMethods(ghost) == nil && topology.identity(ghost) == nil)
        }
    }
}
