import Passthrough
import PassthroughSimulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Device names: libpci's from pci.ids first, graced's table for NVIDIA data-centre GPUs pci.ids lacks,
/// else `Device XXXX`.
@Suite("Device names")
struct DeviceNameTests {
    /// Five display controllers: NVIDIA H100 PCIe, H200 SXM, GH200, an ID no database names, and a
    /// virtio device carrying the GH200's device ID.
    static let functions: [SimulatedFunction] = [
        (0x01, 0x10de, 0x2331), (0x02, 0x10de, 0x2335), (0x03, 0x10de, 0x2342), (0x04, 0x10de, 0x2fff),
        (0x05, 0x1af4, 0x2342),
    ].map { bus, vendor, device in
        SimulatedFunction(
            bdf: BDF(domain: 0, bus: bus, device: 0, function: 0)!, parent: nil, vendor: vendor,
            device: device, classCode: 0x03_0200, iommuGroup: Int(bus))
    }

    /// The devices above as the inventory names them, with libpci reading `idsPath` (nil: the system's).
    static func names(idsPath: String?) throws -> [String: DeviceName] {
        let folder = try TestFolder()
        let root = SysfsRoot(path: folder.path + "/sys")
        try SysfsTreeBuilder(root: root, functions: functions, drivers: []).build()
        let devices = try HostInventory(root: root, idsPath: idsPath).scan()
        #expect(devices.count == functions.count)
        var names: [String: DeviceName] = [:]
        for device in devices {
            let key = device.vendorId.dropFirst(2) + ":" + device.deviceId.dropFirst(2)
            names[String(key)] = DeviceName(name: device.deviceName, source: device.nameSource)
        }
        return names
    }

    /// Whether the system's pci.ids (libpci's default) names NVIDIA's device `id` (four hex digits).
    static func systemPCIIDsNames(_ id: String) -> Bool {
        guard let bytes = try? SysfsRoot(path: "/usr/share/misc").readBytes("pci.ids", limit: 8 << 20) else {
            return false
        }
        var inNVIDIA = false
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if !line.hasPrefix("\t") && !line.hasPrefix("#") { inNVIDIA = line.hasPrefix("10de ") }
            if inNVIDIA && line.hasPrefix("\t" + id + " ") { return true }
        }
        return false
    }

    @Test("the API spells the sources pci.ids, graced and none")
    func sourceSpelling() {
        #expect(DeviceNameSource.allCases.map(\.rawValue) == ["pci.ids", "graced", "none"])
        #expect(
            DeviceName.unknownName(0x2342) == "Device 2342" && DeviceName.unknownName(0xab) == "Device 00ab")
    }

    @Test("pci.ids wins, graced's table answers only for NVIDIA, anything else is Device XXXX")
    func resolution() {
        #expect(
            DeviceName.resolve(vendorID: 0x10de, deviceID: 0x2342, pciIDsName: "Test GH200")
                == DeviceName(name: "Test GH200", source: .pciIDs))
        #expect(
            DeviceName.resolve(vendorID: 0x10de, deviceID: 0x2342, pciIDsName: nil)
                == DeviceName(name: "GH100 [GH200 120GB / 480GB]", source: .graced))
        #expect(
            DeviceName.resolve(vendorID: 0x10de, deviceID: 0x2fff, pciIDsName: nil)
                == DeviceName(name: "Device 2fff", source: .unnamed))
        for vendor: UInt16 in [0x1af4, 0x8086, 0x15b3, 0x1002] {
            for device in NVIDIADataCenterNames.table.keys {
                #expect(
                    DeviceName.resolve(vendorID: vendor, deviceID: device, pciIDsName: nil).source == .unnamed
                )
            }
        }
    }

    @Test("the table holds the named data-centre parts, each in pci.ids' CHIP [Product] form")
    func table() {
        let table = NVIDIADataCenterNames.table
        #expect(table[0x2335] == "GH100 [H200 SXM 141GB]" && table[0x233b] == "GH100 [H200 NVL]")
        #expect(table[0x2342] == "GH100 [GH200 120GB / 480GB]" && table[0x2348] == "GH100 [GH200 144G HBM3e]")
        #expect(table[0x2901] == "GB100 [B200]" && table[0x2941] == "GB100 [HGX GB200]")
        #expect(table[0x3182] == "GB110 [B300 SXM6 AC]" && table[0x31c2] == "GB110 [GB300]")
        #expect(table.values.allSatisfy { $0.contains(" [") && $0.hasSuffix("]") })
    }

    @Test(
        "with the system pci.ids: 2331 keeps libpci's name, 2335 and 2342 get graced's, 2fff stays unnamed",
        .enabled(
            if: !systemPCIIDsNames("2335") && !systemPCIIDsNames("2342"),
            "the system pci.ids is Debian 12's (2023), which names neither H200 nor GH200"))
    func systemPCIIDs() throws {
        let names = try Self.names(idsPath: nil)
        #expect(names["10de:2331"] == DeviceName(name: "GH100 [H100 PCIe]", source: .pciIDs))
        #expect(names["10de:2335"] == DeviceName(name: "GH100 [H200 SXM 141GB]", source: .graced))
        #expect(names["10de:2342"] == DeviceName(name: "GH100 [GH200 120GB / 480GB]", source: .graced))
        #expect(names["10de:2fff"] == DeviceName(name: "Device 2fff", source: .unnamed))
        #expect(names["1af4:2342"] == DeviceName(name: "Device 2342", source: .unnamed))
    }

    @Test("a pci.ids file of our own: its name wins, graced's table fills what it lacks")
    func customPCIIDs() throws {
        let folder = try TestFolder()
        let path = folder.path + "/pci.ids"
        try write(
            "# A test pci.ids\n10de  NVIDIA Corporation\n\t2342  Test GH200\n\t2fff  Test Future\n"
                + "\t\t10de 16b0  Test GH200 board\n1af4  Red Hat, Inc.\n",
            to: path)
        try PCIIDsFile.check(path)
        let names = try Self.names(idsPath: path)
        #expect(names["10de:2342"] == DeviceName(name: "Test GH200", source: .pciIDs))
        #expect(names["10de:2fff"] == DeviceName(name: "Test Future", source: .pciIDs))
        // Known to graced's table and absent from this file (though the system's names it).
        #expect(names["10de:2331"] == DeviceName(name: "GH100 [H100 PCIe]", source: .graced))
        #expect(names["10de:2335"] == DeviceName(name: "GH100 [H200 SXM 141GB]", source: .graced))
        #expect(names["1af4:2342"] == DeviceName(name: "Device 2342", source: .unnamed))
    }

    @Test("an empty pci.ids file is valid and names nothing")
    func emptyPCIIDs() throws {
        let folder = try TestFolder()
        let path = folder.path + "/pci.ids"
        try write("", to: path)
        try PCIIDsFile.check(path)
        let names = try Self.names(idsPath: path)
        #expect(names["10de:2331"]?.source == .graced && names["10de:2fff"]?.source == .unnamed)
    }

    @Test("a pci.ids that is missing, a folder or not pci.ids is refused with the reason")
    func refusedPCIIDs() throws {
        let folder = try TestFolder()
        let missing = folder.path + "/absent.ids"
        let error = try #require(throws: PCIIDsFileError.self) { try PCIIDsFile.check(missing) }
        #expect(error.description == "cannot use \(missing) as pci.ids: No such file or directory")
        #expect(throws: PCIIDsFileError.self) { try PCIIDsFile.check(folder.path) }
        let page = folder.path + "/page.html"
        try write("<html>not a pci.ids</html>\n", to: page)
        let parse = try #require(throws: PCIIDsFileError.self) { try PCIIDsFile.check(page) }
        #expect(parse.reason.hasPrefix("libpci cannot parse it (") && parse.reason.contains("line 1"))
    }

    @Test("on the simulated host every NVIDIA GPU has a name, none of them Device XXXX")
    func simulatedHost() throws {
        try withDemoHost { host in
            let gpus = try HostInventory(root: host.root).scan().filter { $0.vendorId == "0x10de" }
            #expect(gpus.count == 6)
            for gpu in gpus {
                #expect(!gpu.deviceName.hasPrefix("Device "), "\(gpu.bdf) \(gpu.deviceId)")
                #expect(gpu.nameSource != .unnamed, "\(gpu.bdf) \(gpu.deviceId)")
            }
            let blackwell = try #require(gpus.first { $0.deviceId == "0x3182" })
            #expect(blackwell.deviceName == "GB110 [B300 SXM6 AC]")
        }
    }
}

private func write(_ text: String, to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw KernelError(code: errno, path: path) }
    defer { close(descriptor) }
    let bytes = Array(text.utf8)
    guard bytes.isEmpty || Glibc.write(descriptor, bytes, bytes.count) == bytes.count else {
        throw KernelError(code: errno, path: path)
    }
}
