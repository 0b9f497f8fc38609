import Dispatch
import GraceTestSupport
import Synchronization
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

extension SimulatorTests {
    /// Runtime power management: an idle VFIO-bound function sits in D3hot and its BAR0 reads all-ones;
    /// `power/control` on, a holder or a reset write in progress keeps it in D0. Serialized: some
    /// windows are timed.
    @Suite(.serialized) struct Power {
        static let gh200 = bdf("0009:01:00.0")  // nvgrace_gpu_vfio_pci, group 10
        static let nativeGH200 = bdf("0019:01:00.0")  // nvidia
        static let cxlGPU = bdf("0008:01:00.0")  // nvgrace_gpu_vfio_pci, group 8
        static let h100 = bdf("0000:c3:00.0")  // vfio-pci, group 6
        static let vfioBound = [cxlGPU, gh200, bdf("0029:01:00.0"), h100]

        /// `power_state` and `power/runtime_status`.
        func power(_ host: SimulatedHost, _ device: BDF) throws -> [String] {
            let folder = host.root.device(device)
            return [
                try host.root.readString(folder + "/power_state"),
                try host.root.readString(folder + "/power/runtime_status"),
            ]
        }

        /// The two nvgrace words of BAR0, as a memory read through `resource0` sees them.
        func words(_ host: SimulatedHost, _ device: BDF) throws -> [UInt32] {
            try SysfsTreeBuilder.nvgraceReadyOffsets.map { offset in
                let bytes = try host.root.readBytes(
                    host.root.device(device) + "/resource0", offset: offset, count: 4)
                return ConfigSpaceBuilder.read32(bytes, at: 0)
            }
        }

        /// PMCSR bits 1:0 read from config space.
        func pmcsrState(_ host: SimulatedHost, _ device: BDF) throws -> UInt16 {
            let offset = try #require(host.kernel.configLayout(for: device)?.powerControlStatus)
            let bytes = try host.root.readBytes(
                host.root.device(device) + "/config", offset: offset, count: 2)
            return ConfigSpaceBuilder.read16(bytes, at: 0) & 0x3
        }

        static let suspended = ["D3hot", "suspended"]
        static let active = ["D0", "active"]
        static let allOnes: [UInt32] = [0xFFFF_FFFF, 0xFFFF_FFFF]
        static let readyWords: [UInt32] = [0xFF, 0xFF]

        @Test func idleVFIODevicesStartSuspendedAndNativeOnesAwake() throws {
            try withDemoHost { host in
                for device in Self.vfioBound {
                    #expect(try power(host, device) == Self.suspended, "\(device)")
                    #expect(host.kernel.runtimePower(device) == .suspended)
                    #expect(
                        try words(host, device) == Self.allOnes, "\(device): BAR0 reads all-ones in D3hot")
                    // Config space still answers, and says D3hot.
                    let config = try ConfigReader(host.root, device)
                    #expect(config.u16(0) == 0x10de)
                    #expect(try pmcsrState(host, device) == 3)
                    #expect(host.kernel.isReady(device) == true, "suspended, not in reset")
                }
                let awake = host.kernel.presentDevices.filter { !Self.vfioBound.contains($0) }
                #expect(awake.count == 15)
                for device in awake {
                    #expect(try power(host, device) == Self.active, "\(device)")
                    #expect(try pmcsrState(host, device) == 0)
                }
                #expect(try words(host, Self.nativeGH200) == Self.readyWords)
            }
        }

        @Test func controlOnWakesAndAutoLetsItFallBack() throws {
            try withDemoHost { host in
                try host.kernel.perform(.powerControl(Self.gh200, "on"))
                #expect(try host.root.readString(host.root.device(Self.gh200) + "/power/control") == "on")
                #expect(try power(host, Self.gh200) == Self.active)
                #expect(try words(host, Self.gh200) == Self.readyWords)
                #expect(try pmcsrState(host, Self.gh200) == 0)
                try host.kernel.perform(.powerControl(Self.gh200, "auto\n"))
                #expect(try host.root.readString(host.root.device(Self.gh200) + "/power/control") == "auto")
                #expect(try power(host, Self.gh200) == Self.suspended)
                #expect(try words(host, Self.gh200) == Self.allOnes)
                // A non-nvgrace GPU awake reads what its BAR holds there (nothing modelled: 0).
                try host.kernel.perform(.powerControl(Self.h100, "on"))
                #expect(try words(host, Self.h100) == [0, 0])
                // Native drivers ignore auto as far as the simulator goes.
                try host.kernel.perform(.powerControl(Self.nativeGH200, "auto"))
                #expect(try power(host, Self.nativeGH200) == Self.active)
            }
        }

        @Test func awakeResetShowsZeroThenFF() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.perform(.powerControl(Self.gh200, "on"))
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 150), for: Self.gh200)
                try host.kernel.perform(.reset(Self.gh200))
                #expect(try words(host, Self.gh200) == [0, 0])
                #expect(try power(host, Self.gh200) == Self.active)
                let elapsed = try await waitUntil(timeoutMs: 3000) {
                    try words(host, Self.gh200) == Self.readyWords
                }
                #expect(elapsed != nil)
                #expect(host.kernel.isReady(Self.gh200) == true)
            }
        }

        @Test func readyLandsInBAR0OnlyWhileAwake() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 100), for: Self.gh200)
                try host.kernel.perform(.reset(Self.gh200))
                // The write is over: back in D3hot, the GPU still in reset behind all-ones.
                #expect(try power(host, Self.gh200) == Self.suspended)
                #expect(try words(host, Self.gh200) == Self.allOnes)
                #expect(host.kernel.isReady(Self.gh200) == false)
                #expect(
                    try await waitUntil(timeoutMs: 3000) { host.kernel.isReady(Self.gh200) == true } != nil)
                #expect(try words(host, Self.gh200) == Self.allOnes, "ready, but suspended")
                try host.kernel.perform(.powerControl(Self.gh200, "on"))
                #expect(try words(host, Self.gh200) == Self.readyWords)

                // Woken in the middle of the window, it shows "not ready" first.
                try host.kernel.perform(.powerControl(Self.gh200, "auto"))
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 300), for: Self.gh200)
                try host.kernel.perform(.reset(Self.gh200))
                try host.kernel.perform(.powerControl(Self.gh200, "on"))
                #expect(try words(host, Self.gh200) == [0, 0])
                #expect(
                    try await waitUntil(timeoutMs: 3000) { try words(host, Self.gh200) == Self.readyWords }
                        != nil)
            }
        }

        @Test func resetWriteWakesTheDeviceWhileItLasts() async throws {
            try await withDemoHostAsync { host in
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 0), for: Self.gh200)
                // The write is held in the kernel until the test has looked: the window is the
                // test's, however slowly it runs.
                try host.kernel.holdResetWrites(Self.gh200)
                let finished = WriteEnd()
                // On a thread of its own: the write blocks, as a kernel write would.
                startThread {
                    try? host.kernel.perform(.reset(Self.gh200))
                    finished.time.withLock { $0 = nowMs() }
                }
                #expect(try await waitUntil { host.kernel.heldResetWrites(Self.gh200) == 1 } != nil)
                // During the write: awake (pm_runtime_get_sync), ready at once here, so 0xFF.
                #expect(try power(host, Self.gh200) == Self.active, "awake during the reset write")
                #expect(finished.time.withLock { $0 } == nil)
                #expect(try words(host, Self.gh200) == Self.readyWords)
                host.kernel.releaseResetWrites(Self.gh200)
                #expect(try await waitUntil { finished.time.withLock { $0 } != nil } != nil)
                // After the write the kernel drops its reference: suspended again.
                #expect(try power(host, Self.gh200) == Self.suspended)
                #expect(try words(host, Self.gh200) == Self.allOnes)

                // resetWriteMs makes the write itself last that long.
                try host.kernel.setFaults(SimulatorFaults(resetWriteMs: 300), for: Self.gh200)
                let took = await offPool { () -> Double in
                    let start = nowMs()
                    try? host.kernel.perform(.reset(Self.gh200))
                    return nowMs() - start
                }
                #expect(took >= 295, "the write returned after \(took) ms")
                #expect(try power(host, Self.gh200) == Self.suspended)
            }
        }

        @Test func aHolderKeepsItsGroupAwake() throws {
            try withDemoHost { host in
                try host.kernel.addHolder(pid: 4242, command: "qemu-system-x86_64", group: 6)
                #expect(try power(host, Self.h100) == Self.active)
                #expect(host.kernel.runtimePower(Self.h100) == .active)
                // Held or not, the other members keep their native drivers and D0.
                #expect(try power(host, bdf("0000:c3:00.1")) == Self.active)
                #expect(try power(host, Self.gh200) == Self.suspended, "another group")

                try host.kernel.addHolder(pid: 4242, command: "qemu-system-x86_64", group: 10)
                #expect(try power(host, Self.gh200) == Self.active)
                #expect(try words(host, Self.gh200) == Self.readyWords)
                // A reset under a holder: the device stays awake afterwards.
                try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 0), for: Self.gh200)
                try host.kernel.perform(.reset(Self.gh200))
                #expect(try power(host, Self.gh200) == Self.active)

                try host.kernel.removeHolder(pid: 4242)
                #expect(try power(host, Self.h100) == Self.suspended)
                #expect(try power(host, Self.gh200) == Self.suspended)
                #expect(try words(host, Self.gh200) == Self.allOnes)
            }
        }

        @Test func driverChangesMovePowerAndTheVFIONode() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                let dev = SysfsRoot(path: host.devRoot)
                #expect(dev.exists("vfio/10"))
                // Back to the native driver: awake, the GPU's words visible, the group node gone.
                try kernel.perform(.driverOverride(Self.gh200, ""))
                try kernel.perform(.unbind(Self.gh200, driver: "nvgrace_gpu_vfio_pci"))
                #expect(try power(host, Self.gh200) == Self.active, "no driver: not runtime suspended here")
                #expect(!dev.exists("vfio/10"))
                try kernel.perform(.driversProbe(Self.gh200))
                #expect(host.root.linkName(host.root.device(Self.gh200) + "/driver") == "nvidia")
                #expect(try words(host, Self.gh200) == Self.readyWords)
                // And to vfio-pci: idle again.
                try kernel.perform(.driverOverride(Self.gh200, "vfio-pci"))
                try kernel.perform(.unbind(Self.gh200, driver: "nvidia"))
                try kernel.perform(.driversProbe(Self.gh200))
                #expect(try power(host, Self.gh200) == Self.suspended)
                #expect(dev.exists("vfio/10"))

                // Removed and rescanned, a fresh device on its native driver is awake.
                try kernel.perform(.remove(Self.h100))
                #expect(!dev.exists("vfio/6"))
                try kernel.perform(.rescan)
                #expect(try power(host, Self.h100) == Self.active)
                #expect(try host.root.readString(host.root.device(Self.h100) + "/power/control") == "auto")
            }
        }
    }
}

/// When a write running on another thread returned.
final class WriteEnd: Sendable {
    let time = Mutex<Double?>(nil)
}
