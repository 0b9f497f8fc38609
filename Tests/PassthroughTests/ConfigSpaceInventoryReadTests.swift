import Testing

@testable import Passthrough
@testable import PassthroughSimulator

/// The inventory reads config space sparsely (the header, the extended chain's headers, the
/// DVSECs); what it derives must be what the whole 4 KiB says, on the demo host (GH200s with the
/// MIG bug, the CXL GPU, the H100, bridges, a NIC, NVMe) and on a real H200 guest's capture.
@Suite struct ConfigSpaceInventoryReadTests {
    static func expectSameFacts(_ root: SysfsRoot, _ bdfs: [BDF]) throws {
        #expect(!bdfs.isEmpty)
        for bdf in bdfs {
            let path = root.device(bdf) + "/config"
            let whole = ConfigSpace(try root.readBytes(path, limit: ConfigSpace.extendedSize))
            let sparse = ConfigSpace.readForInventory(root, path)
            #expect(sparse.extendedCapabilities() == whole.extendedCapabilities(), "\(bdf)")
            #expect(sparse.dvsecs() == whole.dvsecs(), "\(bdf)")
            #expect(sparse.cxlRange1SizeLow()?.register == whole.cxlRange1SizeLow()?.register, "\(bdf)")
            #expect(sparse.hasMigHardwareBug == whole.hasMigHardwareBug, "\(bdf)")
            #expect(sparse.capabilities() == whole.capabilities(), "\(bdf)")
            #expect(sparse.linkStatus == whole.linkStatus, "\(bdf)")
            #expect(Array(sparse.bytes.prefix(256)) == Array(whole.bytes.prefix(256)), "\(bdf)")
        }
    }

    @Test func theDemoHostReadsTheSameSparselyAsWhole() throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-sparse")
        defer { try? host.removeFiles() }
        try Self.expectSameFacts(host.root, host.kernel.presentDevices)
        // The CXL GPU and a GH200 are what the sparse read exists to describe.
        let cxl = ConfigSpace.readForInventory(host.root, host.root.device(BDF("0008:01:00.0")!) + "/config")
        #expect(cxl.cxlRange1SizeLow() != nil)
    }

    @Test func aRealH200GuestReadsTheSameSparselyAsWhole() throws {
        try withH200Host { host in try Self.expectSameFacts(host.root, host.kernel.presentDevices) }
    }

    @Test func aGoneOrConventionalFunctionReadsWhatIsThere() throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-sparse")
        defer { try? host.removeFiles() }
        #expect(ConfigSpace.readForInventory(host.root, "bus/pci/devices/0000:ff:00.0/config").bytes.isEmpty)
        let gpu = BDF("0000:c3:00.0")!
        try TreeFiles(root: host.root).replace(
            host.root.device(gpu) + "/config", Array(repeating: 0xFF, count: 4096))
        #expect(ConfigSpace.readForInventory(host.root, host.root.device(gpu) + "/config").count == 256)
    }
}
