import Passthrough
import Testing

@Suite("Reset plans")
struct PlanResetTests {
    let gh200 = bdf("0009:01:00.0")

    @Test("auto picks the first method in reset_method; the plan is one reset write")
    func autoPicksFirst() throws {
        try withDemoHost { host in
            let plan = ResetPlanner(root: host.root, processes: try FakeProc().table).plan(gh200)
            #expect(plan.refusal == nil)
            #expect(plan.method == "flr" && plan.reason == "first method in reset_method (flr)")
            #expect(
                plan.affected == [AffectedFunction(bdf: gh200, driver: "nvgrace_gpu_vfio_pci", role: .target)]
            )
            #expect(plan.writes == [.reset(gh200)] && plan.restoreWrites.isEmpty)
        }
    }

    @Test("a named method that is not first narrows reset_method for the reset and restores it after")
    func namedMethod() throws {
        try withDemoHost { host in
            // Blackwell-Next lists "flr bus", is on a VFIO variant driver and is alone behind its root
            // port (on bus 01, not the root bus), so a bus reset is allowed and reaches only itself.
            let cxl = bdf("0008:01:00.0")
            let plan = ResetPlanner(root: host.root, processes: try FakeProc().table).plan(cxl, method: .bus)
            #expect(plan.refusal == nil && plan.method == "bus" && plan.reason == "requested")
            #expect(plan.availableMethods == ["flr", "bus"])
            #expect(
                plan.affected == [AffectedFunction(bdf: cxl, driver: "nvgrace_gpu_vfio_pci", role: .target)])
            #expect(plan.writes == [.resetMethod(cxl, "bus"), .reset(cxl)])
            #expect(plan.restoreWrites == [.resetMethod(cxl, "flr bus")])
        }
    }

    @Test("a bus reset of the demo H100 hits its audio function too: held by snd_hda_intel until moved")
    func h100BusSibling() throws {
        try withDemoHost { host in
            let h100 = bdf("0000:c3:00.0")
            let audio = bdf("0000:c3:00.1")
            let planner = ResetPlanner(root: host.root, processes: try FakeProc().table)
            let plan = planner.plan(h100, method: .bus)
            // Both functions of the slot are reached; the NIC behind the other switch port is not.
            #expect(plan.affected.map(\.bdf) == [h100, audio])
            #expect(plan.affected.map(\.role) == [.target, .sibling])
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .held && refusal.kind == .inTheWay)
            #expect(
                refusal.holders.map(\.bdf) == [audio]
                    && refusal.holders.first?.heldBy == "driver snd_hda_intel")
            #expect(
                refusal.message
                    == "cannot reset 0000:c3:00.0 with bus: held by 0000:c3:00.1 (driver snd_hda_intel)")
            #expect(refusal.resolution == "unbind 0000:c3:00.1 from snd_hda_intel (or bind it to vfio-pci)")
            #expect(plan.method == "bus" && plan.writes.isEmpty && plan.restoreWrites.isEmpty)
            // FLR touches only the H100 itself, so the audio function's driver does not matter.
            let flr = planner.plan(h100, method: .flr)
            #expect(flr.refusal == nil && flr.affected.map(\.bdf) == [h100] && flr.writes == [.reset(h100)])

            // Following the resolution: with the audio function on vfio-pci the bus reset may go ahead,
            // narrowing reset_method to bus and restoring it after.
            for write in BindStep(bdf: audio, fromDriver: "snd_hda_intel", toDriver: "vfio-pci").writes {
                try host.kernel.perform(write)
            }
            let free = planner.plan(h100, method: .bus)
            #expect(free.refusal == nil && free.method == "bus")
            #expect(free.affected.map(\.bdf) == [h100, audio])
            #expect(
                free.affected.map(\.driver) == ["vfio-pci", "vfio-pci"]
                    && !free.affected.contains(where: \.isHeld))
            #expect(free.writes == [.resetMethod(h100, "bus"), .reset(h100)])
            #expect(free.restoreWrites == [.resetMethod(h100, "flr bus")])
        }
    }

    @Test("a method the device lacks is refused with the available ones")
    func unsupported() throws {
        try withDemoHost { host in
            let plan = ResetPlanner(root: host.root, processes: try FakeProc().table).plan(gh200, method: .pm)
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .unsupportedMethod && refusal.kind == .notApplicable)
            #expect(refusal.message.hasSuffix("available: flr") && plan.method == nil && plan.writes.isEmpty)
        }
    }

    @Test("no reset method at all is refused")
    func noMethod() throws {
        try withDemoHost { host in
            try writeText(host.root.absolute("bus/pci/devices/0009:01:00.0/reset_method"), "")
            let plan = ResetPlanner(root: host.root, processes: try FakeProc().table).plan(gh200)
            #expect(plan.refusal?.code == .noResetMethod && plan.refusal?.kind == .notApplicable)
        }
    }

    @Test("a GH200 never gets a bus reset, asked for or picked by auto")
    func gh200Bus() throws {
        try withDemoHost { host in
            try writeText(host.root.absolute("bus/pci/devices/0009:01:00.0/reset_method"), "bus flr\n")
            let planner = ResetPlanner(root: host.root, processes: try FakeProc().table)
            for method in [ResetMethod.bus, .auto] {
                let refusal = try #require(planner.plan(gh200, method: method).refusal)
                #expect(refusal.code == .busResetForbidden && refusal.kind == .notApplicable)
                #expect(refusal.message.contains("10de:2342") && refusal.message.contains("reboot"))
                #expect(refusal.resolution.contains("flr") && refusal.resolution.contains("acpi"))
            }
            #expect(planner.plan(gh200, method: .flr).refusal == nil)
        }
    }

    @Test("a target on a host driver is held by that driver, with the bind endpoint as the way out")
    func heldByDriver() throws {
        try withDemoHost { host in
            let target = bdf("0019:01:00.0")
            let plan = ResetPlanner(root: host.root, processes: try FakeProc().table).plan(target)
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .held && refusal.kind == .inTheWay)
            #expect(
                refusal.holders.map(\.bdf) == [target] && refusal.holders.first?.heldBy == "driver nvidia")
            #expect(refusal.resolution.contains("POST /gpus/0019:01:00.0/bind"))
            #expect(plan.method == "flr" && plan.writes.isEmpty)
        }
    }

    @Test("a VM with the target's VFIO group open holds it: refusal names the pid and the command")
    func heldByVM() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            try proc.add(
                pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/vfio", "/dev/vfio/10"])
            try proc.add(pid: 99, command: "qemu-other", openFiles: ["/dev/vfio/12"])
            let plan = ResetPlanner(root: host.root, processes: proc.table).plan(gh200)
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .held && refusal.kind == .inTheWay)
            #expect(refusal.message.contains("pid 4242 (qemu-system-aar)") && !refusal.message.contains("99"))
            #expect(refusal.resolution.contains("stop the VM"))
            #expect(
                plan.affected.first?.holders == [
                    Holder(pid: 4242, command: "qemu-system-aar", path: "/dev/vfio/10")
                ])
        }
    }

    @Test("bridges and unknown addresses are refused")
    func notEndpointOrFound() throws {
        try withDemoHost { host in
            let planner = ResetPlanner(root: host.root, processes: try FakeProc().table)
            let bridge = try #require(planner.plan(bdf("0009:00:00.0")).refusal)
            #expect(
                bridge.code == .notEndpoint && bridge.kind == .notApplicable
                    && bridge.message.contains("endpoints only"))
            let missing = try #require(planner.plan(bdf("0000:ee:00.0")).refusal)
            #expect(missing.code == .notFound && missing.kind == .absent)
        }
    }

    @Test("a bus reset sweeps the sibling function: held when it is on a host driver, fine on vfio-pci")
    func busSibling() throws {
        let proc = try FakeProc()
        let held = try TwoFunctionHost(audioDriver: "snd_hda_intel")
        let plan = ResetPlanner(root: held.root, processes: proc.table).plan(
            TwoFunctionHost.gpu, method: .bus)
        #expect(plan.affected.map(\.bdf) == [TwoFunctionHost.gpu, TwoFunctionHost.audio])
        #expect(plan.affected.map(\.role) == [.target, .sibling])
        let refusal = try #require(plan.refusal)
        #expect(refusal.code == .held && refusal.holders.map(\.bdf) == [TwoFunctionHost.audio])
        #expect(refusal.message.contains("0000:01:00.1 (driver snd_hda_intel)"))
        #expect(refusal.resolution.contains("unbind 0000:01:00.1 from snd_hda_intel"))
        // FLR touches only the function itself.
        #expect(ResetPlanner(root: held.root, processes: proc.table).plan(TwoFunctionHost.gpu).refusal == nil)

        let free = try TwoFunctionHost(audioDriver: "vfio-pci")
        #expect(
            ResetPlanner(root: free.root, processes: proc.table).plan(TwoFunctionHost.gpu, method: .bus)
                .refusal == nil)
        let unbound = try TwoFunctionHost(audioDriver: nil)
        #expect(
            ResetPlanner(root: unbound.root, processes: proc.table).plan(TwoFunctionHost.gpu, method: .bus)
                .refusal
                == nil)
    }

    @Test("no bus reset on a root bus")
    func rootBus() throws {
        let host = try TwoFunctionHost(audioDriver: nil)
        let planner = ResetPlanner(root: host.root, processes: try FakeProc().table)
        let refusal = try #require(planner.plan(TwoFunctionHost.onRootBus, method: .bus).refusal)
        #expect(
            refusal.code == .rootBus && refusal.kind == .notApplicable && refusal.resolution.contains("flr"))
        #expect(planner.plan(TwoFunctionHost.onRootBus, method: .flr).refusal == nil)
    }

    @Test("planning is pure: no driver, override or reset_method changes, no kernel writes")
    func dryRunPurity() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            try proc.add(pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/10"])
            let before = treeState(host.root)
            let aliases = ModulesAlias(text: demoModulesAlias)
            for device in host.kernel.presentDevices {
                for method in ResetMethod.allCases {
                    _ = ResetPlanner(root: host.root, processes: proc.table).plan(device, method: method)
                }
                for includeGroup in [false, true] {
                    _ = BindPlanner(root: host.root, processes: proc.table, aliases: aliases).plan(
                        device, includeGroup: includeGroup)
                }
                _ = UnbindPlanner(root: host.root, processes: proc.table).plan(
                    device, recordedOriginal: "nvidia")
            }
            #expect(treeState(host.root) == before)
            #expect(host.kernel.writes.isEmpty)
        }
    }
}
