import Passthrough
import PassthroughSimulator
import Testing

/// Capturing a host and replaying the capture gives a host the code cannot tell from the original.
@Suite("Capture round trip")
struct CaptureRoundTripTests {
    static func capture(_ host: SimulatedHost) -> HostCapture {
        HostCaptureWriter(root: host.root, firmwareMemory: host.firmwareMemory).capture()
    }

    static func inventory(_ host: SimulatedHost) throws -> [GPUDevice] {
        try HostInventory(
            root: host.root,
            firmwareMemory: FirmwareMemoryTable(source: "simulator", entries: host.firmwareMemory)
        ).scan()
    }

    @Test("the demo host replayed from its capture has the same inventory, field for field")
    func sameInventory() throws {
        try withDemoHost { demo in
            let capture = try HostCapture.decode(Self.capture(demo).encoded())
            let replay = try SimulatedHost.createTemporary(prefix: "graceapi-replay", from: capture)
            defer { try? replay.removeFiles() }
            let original = try Self.inventory(demo)
            #expect(original.count == 6)
            #expect(try Self.inventory(replay) == original)
            #expect(replay.firmwareMemory == demo.firmwareMemory)
            // Every function, not only the GPUs, and the same power states (idle VFIO GPUs suspended).
            #expect(replay.kernel.presentDevices == demo.kernel.presentDevices)
            for device in demo.kernel.presentDevices {
                #expect(replay.kernel.runtimePower(device) == demo.kernel.runtimePower(device))
            }
        }
    }

    @Test("capturing the replay gives the capture back")
    func captureIsStable() throws {
        try withDemoHost { demo in
            let first = Self.capture(demo)
            let replay = try SimulatedHost.createTemporary(prefix: "graceapi-replay", from: first)
            defer { try? replay.removeFiles() }
            let second = Self.capture(replay)
            for (address, function) in first.devices.sorted(by: { $0.key < $1.key }) {
                #expect(second.devices[address] == function, "\(address)")
            }
            #expect(second.devices.count == first.devices.count)
            #expect(second.iommuGroups == first.iommuGroups)
            // The replay adds no driver the demo lacks: it already has vfio-pci and nvgrace_gpu_vfio_pci.
            #expect(second.drivers == first.drivers)
        }
    }

    @Test("serial numbers are zeroed in the capture, and capturing writes nothing")
    func serialNumbersZeroed() throws {
        try withDemoHost { demo in
            let gh200 = bdf("0009:01:00.0")
            let before = treeState(demo.root)
            let live = ConfigSpace(try demo.root.readBytes(demo.root.device(gh200) + "/config"))
            let serial = try #require(live.extendedCapability(ExtendedCapability.deviceSerialNumber))
            #expect(live.bytes[serial.offset + 4..<serial.offset + 12].contains { $0 != 0 })

            let capture = Self.capture(demo)
            let captured = try #require(capture.devices[gh200.description])
            #expect(captured.config[serial.offset + 4..<serial.offset + 12].allSatisfy { $0 == 0 })
            // Everything else in config space is as read.
            var expected = live.bytes
            expected.replaceSubrange(
                serial.offset + 4..<serial.offset + 12, with: [UInt8](repeating: 0, count: 8))
            #expect(captured.config == expected)
            // No function of the demo keeps a serial number anywhere in its capture.
            for function in capture.devices.values {
                let config = ConfigSpace(function.config)
                if let dsn = config.extendedCapability(ExtendedCapability.deviceSerialNumber) {
                    #expect(function.config[dsn.offset + 4..<dsn.offset + 12].allSatisfy { $0 == 0 })
                }
                #expect(function.attributes["vpd"] == nil && function.attributes["serial_number"] == nil)
            }
            #expect(demo.kernel.writes.isEmpty && treeState(demo.root) == before)
        }
    }

    @Test("what the capture records of a function: folder, attributes, links, sizes, listing")
    func recordedShape() throws {
        try withDemoHost { demo in
            let capture = Self.capture(demo)
            #expect(capture.format == HostCapture.formatName && capture.version == 1)
            let function = try #require(capture.devices["0009:01:00.0"])
            #expect(function.realpath == "/sys/devices/pci0009:00/0009:00:00.0/0009:01:00.0")
            #expect(function.text("vendor") == "0x10de\n" && function.text("power/control") == "auto\n")
            #expect(function.links["driver"] == "../../../../bus/pci/drivers/nvgrace_gpu_vfio_pci")
            #expect(function.links["iommu_group"] == "../../../../kernel/iommu_groups/10")
            #expect(function.files == ["resource0": 16 << 20])
            #expect(function.entries.contains("reset") && function.attributes["reset"] == nil)
            #expect(capture.iommuGroups["6"] == ["0000:c3:00.0", "0000:c3:00.1", "0000:c4:00.0"])
            #expect(capture.drivers["vfio-pci"] == ["0000:c3:00.0"])
        }
    }

    @Test(
        "captures that would leave the tree or that libpci could not read are refused",
        arguments: [
            (#"{"format": "graceapi-host-capture", "version": 2, "devices": {}}"#, "unsupported"),
            (#"{"format": "other", "devices": {}}"#, "unsupported"),
            (#"{"devices": []}"#, "not a host capture"),
            (
                #"{"devices": {"0000:00:06.0": {"realpath": "/sys/devices/../../etc/0000:00:06.0"}}}"#,
                "realpath"
            ),
            (
                #"{"devices": {"0000:00:06.0": {"realpath": "/sys/devices/pci0000:00/0000:00:07.0"}}}"#,
                "realpath"
            ),
            (#"{"devices": {"x": {"realpath": "/sys/devices/pci0000:00/x"}}}"#, "not a PCI address"),
            (
                #"{"devices": {"0000:00:06.0": {"realpath": "/sys/devices/pci0000:00/0000:00:06.0", "#
                    + #""attrs": {"../../../escape": "x"}}}}"#, "attribute name"
            ),
            (
                #"{"devices": {"0000:00:06.0": {"realpath": "/sys/devices/pci0000:00/0000:00:06.0", "#
                    + #""attrs": {"vendor": "0x10de\n"}}}}"#, "no readable device"
            ),
        ])
    func refused(json: String, reason: String) throws {
        #expect {
            let capture = try HostCapture.decode(Array(json.utf8))
            _ = try CaptureTreeBuilder(capture)
        } throws: { error in
            String(describing: error).contains(reason)
        }
    }

    /// Found with the host-capture fuzz target (`fuzz/`) once it walked the topology as
    /// `build(at:)` does: each bridge's folder sat inside the other's address, so each was the
    /// other's parent, and laying out the tree went up the loop for ever (`graced --simulate
    /// --capture` hung at startup).
    @Test("a capture whose bridges are each other's parent is refused, not walked round for ever")
    func parentLoopRefused() throws {
        func bridge(_ folder: String) -> String {
            #"{"realpath": "/sys/devices/pci0000:00/\#(folder)", "config_b64": "hoAAAAAAAAAAAAAAAAABAA==", "#
                + #""attrs": {"vendor": "0x8086\n", "device": "0x1234\n", "class": "0x060400\n", "#
                + #""resource": "\#(String(repeating: #"0x0 0x0 0x0\n"#, count: 6))"}}"#
        }
        let json =
            #"{"devices": {"0000:00:01.0": \#(bridge("0000:00:02.0/0000:00:01.0")), "#
            + #""0000:00:02.0": \#(bridge("0000:00:01.0/0000:00:02.0"))}}"#
        let capture = try HostCapture.decode(Array(json.utf8))
        #expect {
            _ = try CaptureTreeBuilder(capture)
        } throws: { error in
            String(describing: error).contains("not in the folder above")
        }
    }
}
