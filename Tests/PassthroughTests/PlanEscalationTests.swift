import Passthrough
import Testing

@Suite("Escalation ladders")
struct PlanEscalationTests {
    let gh200 = bdf("0009:01:00.0")
    let cxl = bdf("0008:01:00.0")
    let h100 = bdf("0000:c3:00.0")

    @Test("a device with flr and bus, alone behind its port: every rung allowed, in order")
    func fullLadder() throws {
        try withDemoHost { host in
            let ladder = EscalationPlanner(root: host.root, processes: try FakeProc().table).plan(cxl)
            #expect(ladder.refusal == nil)
            #expect(ladder.rungs.map(\.step) == [.functionReset, .busReset, .removeRescan, .reboot])
            #expect(ladder.rungs.map(\.method) == ["flr", "bus", "remove+rescan", "reboot"])
            #expect(ladder.rungs.map(\.allowed) == [true, true, true, true])
            #expect(ladder.runnable.map(\.step) == [.functionReset, .busReset, .removeRescan])
            #expect(ladder.rungs[1].plan?.writes == [.resetMethod(cxl, "bus"), .reset(cxl)])
            #expect(ladder.affected == [cxl])
        }
    }

    @Test("a GH200 never gets a bus reset: the ladder goes from flr to remove and rescan")
    func gh200SkipsBus() throws {
        try withDemoHost { host in
            let ladder = EscalationPlanner(root: host.root, processes: try FakeProc().table).plan(gh200)
            #expect(ladder.refusal == nil)
            let bus = ladder.rungs[1]
            #expect(bus.step == .busReset && !bus.allowed && bus.method == nil)
            #expect(bus.reason.contains("must never get a bus reset"))
            #expect(ladder.runnable.map(\.method) == ["flr", "remove+rescan"])
        }
    }

    @Test("a held sibling behind the bridge rules out the bus rung, not the ladder")
    func heldSibling() throws {
        try withDemoHost { host in
            let ladder = EscalationPlanner(root: host.root, processes: try FakeProc().table).plan(h100)
            #expect(ladder.refusal == nil)
            let bus = ladder.rungs[1]
            #expect(bus.method == "bus" && !bus.allowed && bus.reason.contains("snd_hda_intel"))
            #expect(ladder.runnable.map(\.method) == ["flr", "remove+rescan"])
            // The audio function is not claimed, since no allowed rung reaches it.
            #expect(ladder.affected == [h100])
        }
    }

    @Test("a target in use (a VM has its group open) refuses the whole ladder")
    func heldTarget() throws {
        try withDemoHost { host in
            let proc = try FakeProc()
            try proc.add(pid: 4242, command: "qemu-system-aar", openFiles: ["/dev/vfio/10"])
            let ladder = EscalationPlanner(root: host.root, processes: proc.table).plan(gh200)
            let refusal = try #require(ladder.refusal)
            #expect(refusal.code == .held && refusal.kind == .inTheWay)
            #expect(ladder.runnable.isEmpty)
        }
    }

    @Test("a bridge or an absent device is refused before any rung")
    func notEndpoint() throws {
        try withDemoHost { host in
            let planner = EscalationPlanner(root: host.root, processes: try FakeProc().table)
            #expect(planner.plan(bdf("0008:00:00.0")).refusal?.code == .notEndpoint)
            #expect(planner.plan(bdf("0042:00:00.0")).refusal?.code == .notFound)
            #expect(host.kernel.writes.isEmpty)
        }
    }
}
