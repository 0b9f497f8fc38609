import Synchronization
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

/// Uevent datagrams as the kernel writes them, and the simulated kernel announcing the same events.
@Suite struct DeviceEventTests {
    static func datagram(_ fields: [String]) -> [UInt8] {
        fields.flatMap { Array($0.utf8) + [0] }
    }

    @Test func aPCIFunctionsUeventIsRead() {
        let bytes = Self.datagram([
            "unbind@/devices/pci0000:00/0000:00:02.0/0000:01:00.0", "ACTION=unbind",
            "DEVPATH=/devices/pci0000:00/0000:00:02.0/0000:01:00.0", "SUBSYSTEM=pci", "PCI_CLASS=30200",
            "PCI_ID=10DE:2331", "PCI_SLOT_NAME=0000:01:00.0", "SEQNUM=4021",
        ])
        #expect(UeventMessage.parse(bytes) == DeviceEvent(.unbind, BDF("0000:01:00.0")!))
    }

    @Test func theDevicePathNamesTheFunctionWhenTheSlotNameIsAbsent() {
        let bytes = Self.datagram([
            "remove@/devices/pci0000:00/0000:00:02.0/0000:01:00.1", "ACTION=remove",
            "DEVPATH=/devices/pci0000:00/0000:00:02.0/0000:01:00.1", "SUBSYSTEM=pci", "SEQNUM=9",
        ])
        #expect(UeventMessage.parse(bytes) == DeviceEvent(.remove, BDF("0000:01:00.1")!))
    }

    @Test func otherSubsystemsActionsAndUdevsCopiesAreIgnored() {
        let block = Self.datagram([
            "add@/devices/virtual/block/loop0", "ACTION=add", "DEVPATH=/devices/virtual/block/loop0",
            "SUBSYSTEM=block",
        ])
        let move = Self.datagram([
            "move@/devices/pci0000:00/0000:00:02.0", "ACTION=move",
            "DEVPATH=/devices/pci0000:00/0000:00:02.0",
            "SUBSYSTEM=pci", "PCI_SLOT_NAME=0000:00:02.0",
        ])
        var udev = Array("libudev".utf8) + [0, 0xfe, 0xed, 0xca, 0xfe]
        udev += Self.datagram(["ACTION=add", "SUBSYSTEM=pci", "PCI_SLOT_NAME=0000:00:02.0"])
        #expect(UeventMessage.parse(block) == nil)
        #expect(UeventMessage.parse(move) == nil)
        #expect(UeventMessage.parse(udev) == nil)
        #expect(UeventMessage.parse([]) == nil)
        #expect(
            UeventMessage.parse(Self.datagram(["add@/x", "ACTION=add", "SUBSYSTEM=pci", "PCI_SLOT_NAME=zz"]))
                == nil)
    }

    /// The simulator sends what the kernel sends: unbind before remove, children first, and on a
    /// rescan add then bind; a started source receives them in that order.
    @Test func theSimulatedKernelAnnouncesItsChanges() throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-uevents")
        defer { try? host.removeFiles() }
        let kernel = host.kernel
        let received = Mutex<[DeviceEvent]>([])
        let source = kernel.deviceEvents.source()
        try source.start { delivery in
            if case .events(let events) = delivery { received.withLock { $0 += events } }
        }
        let port = BDF("0000:c2:00.0")!
        let gpu = BDF("0000:c3:00.0")!
        let audio = BDF("0000:c3:00.1")!
        try kernel.perform(.unbind(gpu, driver: "vfio-pci"))
        try kernel.perform(.bind(gpu, driver: "vfio-pci"))
        try kernel.perform(.remove(port))
        try kernel.perform(.rescan)
        source.stop()
        let expected: [DeviceEvent] = [
            .init(.unbind, gpu), .init(.bind, gpu),
            .init(.unbind, gpu), .init(.remove, gpu), .init(.unbind, audio), .init(.remove, audio),
            .init(.unbind, port), .init(.remove, port),
            .init(.add, port), .init(.bind, port), .init(.add, gpu), .init(.bind, gpu), .init(.add, audio),
            .init(.bind, audio),
        ]
        #expect(received.withLock { $0 } == expected)
        #expect(kernel.deviceEvents.sent == expected)
        // Stopped: later changes are not delivered.
        try kernel.perform(.unbind(gpu, driver: "nvidia"))
        #expect(received.withLock { $0 }.count == expected.count)
    }

    /// The real socket: opening, binding to the kernel's group and stopping work without privilege,
    /// where netlink exists at all.
    @Test func theNetlinkSourceStartsAndStops() throws {
        let source = NetlinkUeventSource()
        do {
            try source.start { _ in }
        } catch {
            withKnownIssue("no NETLINK_KOBJECT_UEVENT here: \(error)") { throw error }
            return
        }
        source.stop()
        // A second start after a stop works (the socket was closed, not leaked into a busy state).
        try source.start { _ in }
        source.stop()
    }
}
