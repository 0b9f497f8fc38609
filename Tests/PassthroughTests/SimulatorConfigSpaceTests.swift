import Testing

@testable import Passthrough
@testable import PassthroughSimulator

extension SimulatorTests {
    /// The config bytes, read through a test-local walker rather than the builder's own layout.
    @Suite struct ConfigSpace {
        @Test func gh200HeaderAndCapabilities() throws {
            try withDemoHost { host in
                let config = try ConfigReader(host.root, bdf("0009:01:00.0"))
                #expect(config.bytes.count == 4096)
                #expect(config.u16(0x00) == 0x10de)
                #expect(config.u16(0x02) == 0x2342)
                #expect(config.u16(0x06) & 0x10 != 0)
                #expect(config.u8(0x08) == 0xa1)
                #expect(config.u32(0x08) >> 8 == 0x03_0200)
                #expect(config.u8(0x0E) == 0)
                #expect(config.u16(0x2C) == 0x10de)
                #expect(config.u16(0x2E) == 0x16b0)
                #expect(config.capabilities.map(\.id) == [0x01, 0x10, 0x11])

                // BARs match `resource`: BAR0 64-bit non-prefetchable, BAR2 and BAR4 64-bit prefetchable.
                #expect(config.u32(0x10) == 0x0400_0004)
                #expect(config.u32(0x14) == 0x0000_6420)
                #expect(config.u32(0x18) & 0xF == 0xC)
                #expect(config.u32(0x1C) == 0x0000_6400)
                #expect(config.u32(0x20) & 0xF == 0xC)

                let pm = try #require(config.capability(0x01))
                #expect(config.u16(pm + 4) & 0x3 == 3)  // D3hot: idle on nvgrace_gpu_vfio_pci
                let express = try #require(config.capability(0x10))
                #expect(config.u16(express + 2) & 0xF == 2)
                #expect(config.u16(express + 2) >> 4 & 0xF == 0)
                #expect(config.u32(express + 4) & (1 << 28) != 0)
                #expect(config.u32(express + 0x0C) & 0xF == 5)
                #expect(config.u32(express + 0x0C) >> 4 & 0x3F == 16)
                let linkStatus = config.u16(express + 0x12)
                #expect(linkStatus & 0xF == 5)
                #expect(linkStatus >> 4 & 0x3F == 16)
                #expect(linkStatus & (1 << 13) != 0)

                // Grace Hopper: no NVIDIA DVSEC id 3, no CXL DVSEC.
                #expect(config.extendedCapabilities.map(\.id) == [0x0003])
                #expect(config.dvsec(vendor: 0x10de, id: 3) == nil)
                #expect(config.dvsec(vendor: 0x1e98, id: 0) == nil)
            }
        }

        @Test func blackwellNextDVSECs() throws {
            try withDemoHost { host in
                let device = bdf("0008:01:00.0")
                let config = try ConfigReader(host.root, device)
                #expect(config.extendedCapabilities.map(\.id) == [0x0003, 0x0023, 0x0023])
                #expect(config.extendedCapabilities.allSatisfy { $0.version == 1 })
                let cxl = try #require(config.dvsec(vendor: 0x1e98, id: 0))
                #expect(cxl == 0x10C)
                #expect(config.u32(cxl + 4) >> 20 == 0x3C)
                #expect(config.u32(cxl + 4) >> 16 & 0xF == 1)
                let range1 = config.u32(cxl + 0x1C)
                #expect(range1 & 0x3 == 0x3)
                #expect(range1 >> 13 & 0x7 == 4)
                #expect(UInt64(config.u32(cxl + 0x18)) << 32 | UInt64(range1 & 0xF000_0000) == 0x30_0000_0000)
                #expect(host.kernel.configLayout(for: device)?.cxlRange1SizeLow == cxl + 0x1C)

                let nvidia = try #require(config.dvsec(vendor: 0x10de, id: 3))
                #expect(config.u16(nvidia + 0xA) & 1 == 1)
                #expect(config.u32(nvidia + 4) >> 20 >= 0xC)
                #expect(config.u32(0x10) & 0x7 == 0x4)
            }
        }

        @Test func h100AndBridges() throws {
            try withDemoHost { host in
                let h100 = try ConfigReader(host.root, bdf("0000:c3:00.0"))
                #expect(h100.u32(0x10) == 0x9a00_0000)  // 32-bit, non-prefetchable
                #expect(h100.u32(0x14) == 0x0000_000C)
                #expect(h100.u32(0x18) == 0x0000_2100)
                #expect(h100.u32(0x1C) == 0x0000_000C)
                #expect(h100.u32(0x20) == 0x0000_2120)
                #expect(h100.u16(0x2E) == 0x1626)

                let port = try ConfigReader(host.root, bdf("0000:c0:01.0"))
                #expect(port.u8(0x0E) == 1)
                #expect(port.u8(0x19) == 0xc1)
                #expect(port.u8(0x1A) == 0xc4)
                let express = try #require(port.capability(0x10))
                #expect(port.u16(express + 2) >> 4 & 0xF == 4)
                #expect(port.extendedCapabilities.map(\.id) == [0x000D])

                let downstream = try ConfigReader(host.root, bdf("0000:c2:01.0"))
                #expect(downstream.u8(0x19) == 0xc4)
                #expect(downstream.extendedCapabilities.isEmpty)  // no ACS: the shared group
            }
        }

        @Test func builderChainsCapabilities() {
            var builder = ConfigSpaceBuilder(
                vendor: 0x1234, device: 0x5678, classCode: 0x12_0000, revision: 1, headerType: 0)
            builder.addPowerManagement(noSoftReset: true)
            builder.addExpress(
                portType: .endpoint, functionLevelReset: false, link: .init(generation: 3, width: 8))
            builder.addSerialNumber(0x0102_0304_0506_0708)
            let offset = builder.addDVSEC(vendor: 0xabcd, revision: 2, id: 7, length: 0x10)
            let reader = ConfigReader(bytes: builder.bytes)
            #expect(
                reader.capabilities.map(\.offset) == [builder.layout.powerManagement, builder.layout.express])
            #expect(reader.extendedCapabilities.map(\.offset) == [0x100, offset])
            #expect(reader.u32(offset + 4) == 0x0102_abcd)
            #expect(reader.u16(offset + 8) == 7)
            #expect(reader.u32(builder.layout.express! + 4) & (1 << 28) == 0)
            #expect(reader.u32(0x104) == 0x0506_0708)
        }
    }
}
