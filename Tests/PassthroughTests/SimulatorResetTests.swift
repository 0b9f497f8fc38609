import SystemPackage
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

extension SimulatorTests {
    /// Resets, readiness timers and injected faults. Serialized: the windows are short and timed.
    @Suite(.serialized) struct Reset {
        static let cxlGPU = bdf("0008:01:00.0")
        static let gh200 = bdf("0009:01:00.0")
        static let h100 = bdf("0000:c3:00.0")

        func cxlRange1(_ host: SimulatedHost) throws -> UInt32 {
            let offset = host.kernel.configLayout(for: Self.cxlGPU)!.cxlRange1SizeLow!
            let bytes = try host.root.readBytes(
                host.root.device(Self.cxlGPU) + "/config", offset: offset, count: 4)
            return ConfigSpaceBuilder.read32(bytes, at: 0)
        }

        @Test func cxlMemoryActiveDropsAndReturns() async throws {
            try await withDemoHostAsync { host in
                // Memory_Info_Valid comes back at a quarter of the window; Memory_Active comes due at
                // its end and waits for the test, which so sees the state between them however slowly
                // it runs.
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 1200), for: Self.cxlGPU)
                try host.kernel.holdReadiness(Self.cxlGPU)
                #expect(try cxlRange1(host) & 0x3 == 0x3)
                let start = nowMs()
                try host.kernel.perform(.reset(Self.cxlGPU))
                let during = try cxlRange1(host)
                #expect(during & 0x3 == 0, "Memory_Info_Valid and Memory_Active clear during reset")
                #expect(during >> 13 & 0x7 == 4, "the timeout code stays")
                #expect(host.kernel.isReady(Self.cxlGPU) == false)

                #expect(try await waitUntil { host.kernel.heldReadinessSteps(Self.cxlGPU) == 1 } != nil)
                let total = nowMs() - start
                #expect(total >= 1180, "ready after \(total) ms, before the 1200 ms window")
                #expect(try cxlRange1(host) & 0x3 == 0x1, "Memory_Info_Valid returns before Memory_Active")
                #expect(host.kernel.isReady(Self.cxlGPU) == false)
                host.kernel.releaseReadiness(Self.cxlGPU)
                #expect(try cxlRange1(host) & 0x3 == 0x3)
                #expect(host.kernel.isReady(Self.cxlGPU) == true)
            }
        }

        @Test func nvgraceBAR0WordsReadZeroThenFF() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 100), for: Self.gh200)
                // Awake, or the words read all-ones whatever the GPU's state (see the Power suite).
                try host.kernel.perform(.powerControl(Self.gh200, "on"))
                let file = host.root.device(Self.gh200) + "/resource0"
                func words() throws -> [[UInt8]] {
                    try SysfsTreeBuilder.nvgraceReadyOffsets.map {
                        try host.root.readBytes(file, offset: $0, count: 4)
                    }
                }
                try host.kernel.perform(.reset(Self.gh200))
                #expect(try words() == [[0, 0, 0, 0], [0, 0, 0, 0]])
                let elapsed = try await waitUntil(timeoutMs: 2000) {
                    try words() == [[0xFF, 0, 0, 0], [0xFF, 0, 0, 0]]
                }
                #expect(elapsed != nil)
            }
        }

        @Test func genericDeviceReadsAllOnesDuringReset() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 100), for: Self.h100)
                let config = host.root.device(Self.h100) + "/config"
                try host.kernel.perform(.reset(Self.h100))
                #expect(try host.root.readBytes(config, offset: 0, count: 4) == [0xFF, 0xFF, 0xFF, 0xFF])
                let elapsed = try await waitUntil(timeoutMs: 2000) {
                    try host.root.readBytes(config, offset: 0, count: 4) == [0xde, 0x10, 0x31, 0x23]
                }
                #expect(elapsed != nil)
                #expect(try host.root.readBytes(config).count == 4096)
            }
        }

        @Test func neverReadyStaysNotReady() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 20, neverReady: true), for: Self.h100)
                try host.kernel.perform(.reset(Self.h100))
                try await Task.sleep(for: .milliseconds(150))
                #expect(host.kernel.isReady(Self.h100) == false)
                #expect(
                    try host.root.readBytes(host.root.device(Self.h100) + "/config", offset: 0, count: 2) == [
                        0xFF, 0xFF,
                    ])
                // Cleared, the next reset brings it back.
                try host.kernel.setFaults(SimulatorFaults(neverReady: false), for: Self.h100)
                try host.kernel.perform(.reset(Self.h100))
                #expect(
                    try await waitUntil(timeoutMs: 2000) { host.kernel.isReady(Self.h100) == true } != nil)
            }
        }

        @Test func busyWritesFailThenSucceed() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                try kernel.setFaults(SimulatorFaults(readyAfterMs: 0, busyWrites: 2), for: Self.h100)
                for _ in 0..<2 {
                    #expect(
                        throws: KernelError(.resourceBusy, path: "bus/pci/devices/0000:c3:00.0/reset")
                    ) {
                        try kernel.perform(.reset(Self.h100))
                    }
                }
                try kernel.perform(.reset(Self.h100))
                #expect(try kernel.faults(for: Self.h100) == SimulatorFaults(readyAfterMs: 0))
                #expect(
                    kernel.writes.map { $0.error?.errno } == [Errno.resourceBusy, Errno.resourceBusy, nil])
                #expect(kernel.isReady(Self.h100) == true)  // readyAfterMs 0: back at once
            }
        }

        @Test func vanishOnResetRemovesTheDevice() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                let root = host.root
                try kernel.setFaults(SimulatorFaults(vanishOnReset: true), for: Self.h100)
                #expect(
                    throws: KernelError(
                        .operationNotSupportedByDevice, path: "bus/pci/devices/0000:c3:00.0/reset")
                ) {
                    try kernel.perform(.reset(Self.h100))
                }
                #expect(!root.exists(root.device(Self.h100)))
                #expect(!root.list("bus/pci/devices").contains("0000:c3:00.0"))
                #expect(throws: KernelError.self) { try root.readString(root.device(Self.h100) + "/vendor") }
                #expect(!root.exists("bus/pci/drivers/vfio-pci/0000:c3:00.0"))
                let group = root.linkName("bus/pci/devices/0000:c4:00.0/iommu_group")!
                #expect(
                    root.list("kernel/iommu_groups/\(group)/devices") == ["0000:c3:00.1", "0000:c4:00.0"])
                #expect(kernel.isReady(Self.h100) == nil)
                #expect(throws: KernelError.self) { try kernel.perform(.reset(Self.h100)) }
                // Faults stay reachable for a vanished device; the vanish itself was used up.
                #expect(try kernel.faults(for: Self.h100).isEmpty)

                try kernel.perform(.rescan)
                #expect(root.linkName(root.device(Self.h100) + "/driver") == "nvidia")
                #expect(
                    root.list("kernel/iommu_groups/\(group)/devices") == [
                        "0000:c3:00.0", "0000:c3:00.1", "0000:c4:00.0",
                    ])
            }
        }

        @Test func hangBlocksTheWriterOnce() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                try kernel.setFaults(SimulatorFaults(readyAfterMs: 0, hangWriteMs: 150), for: Self.h100)
                var start = nowMs()
                try kernel.perform(.reset(Self.h100))
                let hung = nowMs() - start
                #expect(hung >= 145, "the write returned after \(hung) ms")
                #expect(hung < 1500)
                start = nowMs()
                try kernel.perform(.reset(Self.h100))
                #expect(nowMs() - start < 100)
                #expect(try kernel.faults(for: Self.h100).hangWriteMs == nil)
            }
        }

        @Test func resetWriteMsBlocksEveryResetWriteUntilCleared() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                #expect(try kernel.resetWriteMs(for: Self.h100) == 0)
                try kernel.setFaults(SimulatorFaults(readyAfterMs: 0, resetWriteMs: 120), for: Self.h100)
                #expect(try kernel.resetWriteMs(for: Self.h100) == 120)
                for _ in 0..<2 {
                    let start = nowMs()
                    try kernel.perform(.reset(Self.h100))
                    let took = nowMs() - start
                    #expect(took >= 115, "the write returned after \(took) ms")
                    #expect(took < 1500)
                }
                // Persistent, unlike a hang; 0 clears it.
                #expect(
                    try kernel.faults(for: Self.h100) == SimulatorFaults(readyAfterMs: 0, resetWriteMs: 120))
                try kernel.setFaults(SimulatorFaults(resetWriteMs: 0), for: Self.h100)
                #expect(try kernel.faults(for: Self.h100) == SimulatorFaults(readyAfterMs: 0))
                let start = nowMs()
                try kernel.perform(.reset(Self.h100))
                #expect(nowMs() - start < 100)
                #expect(kernel.writes.count == 3 && kernel.writes.allSatisfy { $0.error == nil })
            }
        }

        @Test func aDeviceCanHaveItsOwnResetWriteDuration() throws {
            let folder = try TestFolder()
            let root = SysfsRoot(path: folder.path + "/sys")
            let port = bdf("0000:00:01.0")
            let nvme = bdf("0000:01:00.0")
            let functions = [
                SimulatedFunction(
                    bdf: port, parent: nil, vendor: 0x1b36, device: 0x000c, classCode: 0x06_0400,
                    portType: .rootPort, driver: "pcieport", iommuGroup: 0),
                SimulatedFunction(
                    bdf: nvme, parent: port, vendor: 0x1b36, device: 0x0010, classCode: 0x01_0802,
                    resetMethods: ["flr", "bus"], driver: "vfio-pci", nativeDriver: "nvme",
                    driverOverride: "vfio-pci",
                    iommuGroup: 1, readyAfterMs: 0, resetWriteMs: 110),
            ]
            let drivers = ["pcieport", "nvme", "vfio-pci"].map { SimulatedDriver(name: $0) }
            let tree = try SysfsTreeBuilder(root: root, functions: functions, drivers: drivers)
            try tree.build()
            let kernel = try SimulatedKernel(tree: tree)
            #expect(kernel.procRoot == folder.path + "/proc" && kernel.devRoot == folder.path + "/dev")
            #expect(try kernel.resetWriteMs(for: nvme) == 110)
            #expect(kernel.runtimePower(nvme) == .suspended)
            let start = nowMs()
            try kernel.perform(.reset(nvme))
            #expect(nowMs() - start >= 105)
            #expect(kernel.runtimePower(nvme) == .suspended)
        }

        @Test func faultsMerge() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                #expect(try kernel.faults(for: Self.gh200).isEmpty)
                #expect(try kernel.readyAfterMs(for: Self.gh200) == 800)
                #expect(try kernel.readyAfterMs(for: Self.cxlGPU) == 1500)
                #expect(try kernel.readyAfterMs(for: Self.h100) == 200)
                var current = try kernel.setFaults(SimulatorFaults(readyAfterMs: 100), for: Self.gh200)
                #expect(current == SimulatorFaults(readyAfterMs: 100))
                current = try kernel.setFaults(
                    SimulatorFaults(busyWrites: 1, vanishOnReset: true), for: Self.gh200)
                #expect(current == SimulatorFaults(readyAfterMs: 100, busyWrites: 1, vanishOnReset: true))
                current = try kernel.setFaults(
                    SimulatorFaults(neverReady: true, vanishOnReset: false), for: Self.gh200)
                #expect(current == SimulatorFaults(readyAfterMs: 100, neverReady: true, busyWrites: 1))
                #expect(try kernel.readyAfterMs(for: Self.gh200) == 100)
                current = try kernel.setFaults(
                    SimulatorFaults(readyAfterMs: -1, busyWrites: 0), for: Self.gh200)
                #expect(current == SimulatorFaults(neverReady: true))
                #expect(try kernel.faults(for: Self.gh200) == current)
                #expect(try kernel.readyAfterMs(for: Self.gh200) == 800)
                // Other devices are untouched; unknown devices are an error.
                #expect(try kernel.faults(for: Self.h100).isEmpty)
                #expect(throws: KernelError.self) {
                    try kernel.setFaults(SimulatorFaults(neverReady: true), for: bdf("0000:ff:00.0"))
                }
                #expect(throws: KernelError.self) { try kernel.faults(for: bdf("0000:ff:00.0")) }
            }
        }

        @Test func faultsDecodeFromPartialJSONShape() throws {
            // Codable with every field optional: a patch names only what it changes.
            let patch = SimulatorFaults(busyWrites: 3)
            #expect(patch.readyAfterMs == nil && patch.neverReady == nil && patch.hangWriteMs == nil)
            #expect(
                SimulatorFaults(readyAfterMs: 5).merging(patch)
                    == SimulatorFaults(readyAfterMs: 5, busyWrites: 3))
        }
    }
}
