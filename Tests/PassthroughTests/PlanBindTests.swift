import Passthrough
import PassthroughSimulator
import Testing

@Suite("Bind and unbind plans")
struct PlanBindTests {
    let aliases = ModulesAlias(text: demoModulesAlias)
    let h100 = bdf("0000:c3:00.0")
    /// The H100's HDMI audio function, on snd_hda_intel, in the same slot and IOMMU group.
    let audio = bdf("0000:c3:00.1")
    let nic = bdf("0000:c4:00.0")

    /// Applies writes through the simulated kernel, as the engine would.
    func apply(_ writes: [SysfsWrite], _ host: SimulatedHost) throws {
        for write in writes { try host.kernel.perform(write) }
    }

    @Test("auto binds a GH200 on nvidia to the variant driver modules.alias names")
    func autoVariant() throws {
        try withDemoHost { host in
            let target = bdf("0019:01:00.0")
            let plan = BindPlanner(root: host.root, processes: try FakeProc().table, aliases: aliases).plan(
                target)
            #expect(plan.refusal == nil && plan.driver == "nvgrace_gpu_vfio_pci")
            #expect(plan.reason.contains("modules.alias") && plan.originalDriver == "nvidia")
            #expect(
                plan.steps == [BindStep(bdf: target, fromDriver: "nvidia", toDriver: "nvgrace_gpu_vfio_pci")])
            #expect(
                plan.writes == [
                    .driverOverride(target, "nvgrace_gpu_vfio_pci"), .unbind(target, driver: "nvidia"),
                    .driversProbe(target),
                ])
            try apply(plan.writes, host)
            #expect(HostTopology(root: host.root).driver(target) == plan.expectedDriver(for: target))
        }
    }

    @Test("auto falls back to vfio-pci when the variant is not loaded, matches nothing, or there is no file")
    func autoFallback() throws {
        try withDemoHost { host in
            let target = bdf("0019:01:00.0")
            let proc = try FakeProc()
            let vendorKernel = ModulesAlias(
                text: "alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace_vfio_pci\n")
            let notLoaded = BindPlanner(root: host.root, processes: proc.table, aliases: vendorKernel).plan(
                target)
            #expect(notLoaded.driver == "vfio-pci" && notLoaded.reason.contains("absent"))
            let none = BindPlanner(root: host.root, processes: proc.table, aliases: nil).plan(target)
            #expect(none.driver == "vfio-pci" && none.refusal == nil)
            let h100Plan = BindPlanner(root: host.root, processes: proc.table, aliases: aliases).plan(
                h100, includeGroup: true)
            #expect(h100Plan.driver == "vfio-pci" && h100Plan.reason.contains("no VFIO variant"))
        }
    }

    @Test("a device already on its driver has nothing to do")
    func alreadyBound() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            // Even with a VM using it: nothing is written, so nothing blocks.
            try proc.add(pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/10"])
            let plan = BindPlanner(root: host.root, processes: proc.table, aliases: aliases).plan(
                bdf("0009:01:00.0"))
            #expect(plan.isAlreadyDone && plan.writes.isEmpty && plan.driver == "nvgrace_gpu_vfio_pci")
        }
    }

    @Test(
        "the H100 shares group 6 with its audio function and the NIC: not viable alone, three steps with the group"
    )
    func groupViability() throws {
        try withDemoHost { host in
            // Give the H100 back to its native driver first, so every function has to move.
            try apply(
                [.driverOverride(h100, ""), .unbind(h100, driver: "vfio-pci"), .driversProbe(h100)], host)
            let planner = BindPlanner(root: host.root, processes: try FakeProc().table, aliases: aliases)

            let alone = planner.plan(h100, driver: "vfio-pci")
            let refusal = try #require(alone.refusal)
            #expect(refusal.code == .groupNotViable && refusal.kind == .inTheWay)
            #expect(refusal.holders.map(\.bdf) == [audio, nic])
            #expect(refusal.holders.map(\.heldBy) == ["driver snd_hda_intel", "driver mlx5_core"])
            #expect(
                refusal.message
                    == "IOMMU group 6 of 0000:c3:00.0 is not viable: 0000:c3:00.1 is bound to snd_hda_intel, "
                    + "0000:c4:00.0 is bound to mlx5_core")
            #expect(refusal.resolution == "bind them too with \"group\": true, or unbind them")
            #expect(alone.writes.isEmpty && alone.groupMembers.map(\.bdf) == [h100, audio, nic])

            let whole = planner.plan(h100, driver: "vfio-pci", includeGroup: true)
            #expect(whole.refusal == nil)
            // Target first, then the other members in BDF order.
            #expect(
                whole.steps == [
                    BindStep(bdf: h100, fromDriver: "nvidia", toDriver: "vfio-pci"),
                    BindStep(bdf: audio, fromDriver: "snd_hda_intel", toDriver: "vfio-pci"),
                    BindStep(bdf: nic, fromDriver: "mlx5_core", toDriver: "vfio-pci"),
                ])
            #expect(
                whole.writes == [
                    .driverOverride(h100, "vfio-pci"), .unbind(h100, driver: "nvidia"), .driversProbe(h100),
                    .driverOverride(audio, "vfio-pci"), .unbind(audio, driver: "snd_hda_intel"),
                    .driversProbe(audio),
                    .driverOverride(nic, "vfio-pci"), .unbind(nic, driver: "mlx5_core"), .driversProbe(nic),
                ])
            // auto gives the NIC its own variant only when that driver is loaded (it is not here), and
            // modules.alias names no variant for the H100 or its audio function.
            #expect(
                planner.plan(h100, includeGroup: true).steps.map(\.toDriver) == [
                    "vfio-pci", "vfio-pci", "vfio-pci",
                ])

            try apply(whole.writes, host)
            let topology = HostTopology(root: host.root)
            #expect(whole.expectedDrivers == [h100: "vfio-pci", audio: "vfio-pci", nic: "vfio-pci"])
            #expect(whole.expectedDrivers.allSatisfy { topology.driver($0.key) == $0.value })

            // The revert puts all three back where they were, override and driver.
            try apply(whole.revertWrites(reading: host.root), host)
            #expect(
                topology.driver(h100) == "nvidia" && topology.driver(audio) == "snd_hda_intel"
                    && topology.driver(nic) == "mlx5_core")
            #expect([h100, audio, nic].allSatisfy { topology.driverOverride($0) == nil })
        }
    }

    @Test(
        "the demo H100 already on vfio-pci: still not viable alone; with the group the audio function and NIC move"
    )
    func groupWithTargetBound() throws {
        try withDemoHost { host in
            let planner = BindPlanner(root: host.root, processes: try FakeProc().table, aliases: aliases)
            let alone = try #require(planner.plan(h100).refusal)
            #expect(alone.code == .groupNotViable && alone.holders.map(\.bdf) == [audio, nic])
            let whole = planner.plan(h100, includeGroup: true)
            #expect(whole.refusal == nil && whole.originalDriver == "vfio-pci")
            #expect(
                whole.steps == [
                    BindStep(bdf: audio, fromDriver: "snd_hda_intel", toDriver: "vfio-pci"),
                    BindStep(bdf: nic, fromDriver: "mlx5_core", toDriver: "vfio-pci"),
                ])

            // With the whole group on VFIO the H100 alone is viable and already done.
            try apply(whole.writes, host)
            let after = planner.plan(h100)
            #expect(after.isAlreadyDone && after.groupMembers.allSatisfy { !$0.isHeld })
        }
    }

    @Test("revert after a failed bind: old override back, the new driver released, the old one probed")
    func revert() {
        let target = bdf("0019:01:00.0")
        let step = BindStep(bdf: target, fromDriver: "nvidia", toDriver: "vfio-pci", previousOverride: nil)
        #expect(
            step.revertWrites(currentDriver: "vfio-pci") == [
                .driverOverride(target, ""), .unbind(target, driver: "vfio-pci"), .driversProbe(target),
            ])
        #expect(
            step.revertWrites(currentDriver: nil) == [.driverOverride(target, ""), .driversProbe(target)])
        #expect(step.revertWrites(currentDriver: "nvidia") == [.driverOverride(target, "")])
        let fromUnbound = BindStep(
            bdf: target, fromDriver: nil, toDriver: "vfio-pci", previousOverride: "pci-stub")
        #expect(
            fromUnbound.revertWrites(currentDriver: "vfio-pci") == [
                .driverOverride(target, "pci-stub"), .unbind(target, driver: "vfio-pci"),
            ])
    }

    @Test("an unknown driver, a bridge, a missing device, a VM in the way")
    func refusals() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            let planner = BindPlanner(root: host.root, processes: proc.table, aliases: aliases)
            let unknown = try #require(planner.plan(bdf("0019:01:00.0"), driver: "bogus_vfio_pci").refusal)
            #expect(unknown.code == .unknownDriver && unknown.kind == .notApplicable)
            #expect(planner.plan(bdf("0009:00:00.0")).refusal?.code == .notEndpoint)
            #expect(planner.plan(bdf("0000:ee:00.0")).refusal?.kind == .absent)

            try proc.add(pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/10"])
            let held = try #require(planner.plan(bdf("0009:01:00.0"), driver: "vfio-pci").refusal)
            #expect(held.code == .held && held.kind == .inTheWay && held.message.contains("pid 4242"))
        }
    }

    @Test("unbind to the recorded original: clear the override, unbind, probe; the native driver returns")
    func unbindOriginal() throws {
        try withDemoHost { host in
            let target = bdf("0009:01:00.0")
            let plan = UnbindPlanner(root: host.root, processes: try FakeProc().table).plan(
                target, recordedOriginal: "nvidia")
            #expect(plan.refusal == nil && plan.expectedDriver == "nvidia")
            #expect(
                plan.writes == [
                    .driverOverride(target, ""), .unbind(target, driver: "nvgrace_gpu_vfio_pci"),
                    .driversProbe(target),
                ])
            try apply(plan.writes, host)
            #expect(HostTopology(root: host.root).driver(target) == "nvidia")
        }
    }

    @Test("unbind to none leaves the device unbound; to a named driver forces it with the override")
    func unbindNoneAndNamed() throws {
        try withDemoHost { host in
            let planner = UnbindPlanner(root: host.root, processes: try FakeProc().table)
            let first = bdf("0009:01:00.0")
            let none = planner.plan(first, to: .none, recordedOriginal: "nvidia")
            #expect(
                none.writes == [.driverOverride(first, ""), .unbind(first, driver: "nvgrace_gpu_vfio_pci")])
            #expect(none.expectedDriver == nil)
            try apply(none.writes, host)
            #expect(HostTopology(root: host.root).driver(first) == nil)
            #expect(planner.plan(first, to: .none, recordedOriginal: nil).isAlreadyDone)

            let second = bdf("0029:01:00.0")
            let named = planner.plan(second, to: UnbindPlan.Destination("vfio-pci"), recordedOriginal: nil)
            #expect(
                named.writes == [
                    .driverOverride(second, "vfio-pci"), .unbind(second, driver: "nvgrace_gpu_vfio_pci"),
                    .driversProbe(second),
                ])
            try apply(named.writes, host)
            #expect(HostTopology(root: host.root).driver(second) == "vfio-pci")
        }
    }

    @Test("unbind refusals: no recorded original, an unknown driver, a VM with the group open")
    func unbindRefusals() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            let planner = UnbindPlanner(root: host.root, processes: proc.table)
            let target = bdf("0009:01:00.0")
            let noOriginal = try #require(planner.plan(target, recordedOriginal: nil).refusal)
            #expect(noOriginal.code == .noOriginalDriver && noOriginal.kind == .notApplicable)
            #expect(noOriginal.resolution.contains("none"))
            #expect(
                planner.plan(target, to: .driver("nouveau"), recordedOriginal: nil).refusal?.code
                    == .unknownDriver)

            try proc.add(pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/10"])
            let held = planner.plan(target, recordedOriginal: "nvidia")
            #expect(held.refusal?.code == .held && held.refusal?.kind == .inTheWay && held.writes.isEmpty)
        }
    }
}
