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
            // The H100's audio function sits in the same slot, behind the same switch port.
            #expect(topology.parentBridge(bdf("0000:c3:00.1")) == bdf("0000:c2:00.0"))
            #expect(topology.parentBridge(bdf("0009:00:00.0")) == nil)
            #expect(topology.isOnRootBus(bdf("0009:00:00.0")))
            #expect(!topology.isOnRootBus(bdf("0009:01:00.0")))
            #expect(topology.isBridge(bdf("0000:c2:00.0")) && topology.isBridge(bdf("0009:00:00.0")))
            #expect(!topology.isBridge(bdf("0000:c3:00.0")))
            #expect(!topology.isBridge(bdf("0000:c3:00.1")))
            #expect(topology.classCode(bdf("0000:c3:00.0")) == 0x03_0200)
            #expect(topology.classCode(bdf("0000:c3:00.1")) == 0x04_0300)
            // 4 GH200 + their root ports (8), Blackwell-Next + its port (2), the switch's root port,
            // upstream and two downstream ports (4), H100 + audio (2), the NIC, the NVMe + its port (3).
            #expect(topology.allFunctions().count == 19)
        }
    }

    @Test("a bus reset's reach: the functions behind the parent bridge and everything below them")
    func sharingBus() throws {
        try withDemoHost { host in
            let topology = HostTopology(root: host.root)
            let h100Functions = [bdf("0000:c3:00.0"), bdf("0000:c3:00.1")]
            // Both functions of the H100 share its bus, whichever one is asked about; the NIC behind
            // the other switch port does not.
            #expect(topology.functionsSharingBus(bdf("0000:c3:00.0")) == h100Functions)
            #expect(topology.functionsSharingBus(bdf("0000:c3:00.1")) == h100Functions)
            #expect(topology.functionsSharingBus(bdf("0000:c4:00.0")) == [bdf("0000:c4:00.0")])
            #expect(
                topology.functionsSharingBus(bdf("0000:c2:00.0")) == [
                    bdf("0000:c2:00.0"), bdf("0000:c2:01.0"), bdf("0000:c3:00.0"), bdf("0000:c3:00.1"),
                    bdf("0000:c4:00.0"),
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
            let audio = bdf("0000:c3:00.1")
            let group = [h100, audio, bdf("0000:c4:00.0")]
            #expect(topology.iommuGroup(h100) == 6 && topology.iommuGroup(audio) == 6)
            #expect(topology.iommuGroupMembers(h100) == group)
            #expect(topology.iommuGroupMembers(audio) == group)
            #expect(topology.driver(bdf("0000:c4:00.0")) == "mlx5_core")
            #expect(topology.driver(audio) == "snd_hda_intel" && topology.driverOverride(audio) == nil)
            #expect(topology.resetMethods(audio) == ["flr"])
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
            #expect(
                topology.identity(audio)
                    == PCIIdentity(
                        vendorID: 0x10de, deviceID: 0x22a3, subsystemVendorID: 0x10de,
                        subsystemDeviceID: 0x1626, classCode: 0x04_0300))

            let ghost = bdf("0000:ee:00.0")
            #expect(!topology.exists(ghost) && topology.parentBridge(ghost) == nil)
            #expect(!topology.isOnRootBus(ghost) && !topology.isBridge(ghost))
            #expect(topology.iommuGroupMembers(ghost).isEmpty && topology.functionsSharingBus(ghost).isEmpty)
            #expect(topology.resetMethods(ghost) == nil && topology.identity(ghost) == nil)
        }
    }
}
