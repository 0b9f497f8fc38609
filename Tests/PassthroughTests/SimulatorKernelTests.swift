import SystemPackage
import Testing

@testable import Passthrough

extension SimulatorTests {
    /// Writes through the simulated kernel, checked by reading the tree as the service would.
    @Suite struct Kernel {
        /// The errno a write failed with, nil for success.
        func errno(_ body: () throws -> Void) -> Errno? {
            do {
                try body()
                return nil
            } catch {
                return (error as? KernelError)?.errno ?? Errno(rawValue: -1)
            }
        }

        @Test func overrideUnbindProbeMovesTheDriverAndBack() throws {
            try withDemoHost { host in
                let gpu = bdf("0019:01:00.0")
                let kernel = host.kernel
                let root = host.root
                try kernel.perform(.driverOverride(gpu, "vfio-pci"))
                #expect(try root.readString(root.device(gpu) + "/driver_override") == "vfio-pci")
                // The override alone does not unbind.
                #expect(root.linkName(root.device(gpu) + "/driver") == "nvidia")
                try kernel.perform(.unbind(gpu, driver: "nvidia"))
                #expect(root.readLink(root.device(gpu) + "/driver") == nil)
                #expect(!root.exists("bus/pci/drivers/nvidia/\(gpu)"))
                try kernel.perform(.driversProbe(gpu))
                #expect(root.linkName(root.device(gpu) + "/driver") == "vfio-pci")
                #expect(
                    root.resolve(root.device(gpu) + "/driver") == root.resolve("bus/pci/drivers/vfio-pci"))
                #expect(root.resolve("bus/pci/drivers/vfio-pci/\(gpu)") == root.resolve(root.device(gpu)))

                // Give it back: clear the override, unbind, probe: the native driver returns.
                try kernel.perform(.driverOverride(gpu, ""))
                #expect(try root.readString(root.device(gpu) + "/driver_override") == "(null)")
                try kernel.perform(.unbind(gpu, driver: "vfio-pci"))
                try kernel.perform(.driversProbe(gpu))
                #expect(root.linkName(root.device(gpu) + "/driver") == "nvidia")
                #expect(kernel.writes.count == 6)
                #expect(kernel.writes.allSatisfy { $0.error == nil })
            }
        }

        @Test func bindAndUnbindErrors() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                let gpu = bdf("0019:01:00.0")
                #expect(errno { try kernel.perform(.bind(gpu, driver: "nvidia")) } == Errno.resourceBusy)
                // vfio-pci binds only through an override.
                try kernel.perform(.unbind(gpu, driver: "nvidia"))
                #expect(
                    errno { try kernel.perform(.bind(gpu, driver: "vfio-pci")) }
                        == Errno.operationNotSupportedByDevice)
                // An override naming another driver keeps this one from matching.
                try kernel.perform(.driverOverride(gpu, "vfio-pci"))
                #expect(
                    errno { try kernel.perform(.bind(gpu, driver: "nvidia")) }
                        == Errno.operationNotSupportedByDevice)
                try kernel.perform(.bind(gpu, driver: "vfio-pci"))
                #expect(host.root.linkName(host.root.device(gpu) + "/driver") == "vfio-pci")
                #expect(errno { try kernel.perform(.bind(gpu, driver: "vfio-pci")) } == Errno.resourceBusy)

                #expect(
                    errno { try kernel.perform(.unbind(gpu, driver: "nvidia")) }
                        == Errno.operationNotSupportedByDevice)
                let missing = bdf("0000:ff:00.0")
                #expect(
                    errno { try kernel.perform(.bind(missing, driver: "nvidia")) }
                        == Errno.operationNotSupportedByDevice)
                #expect(
                    errno { try kernel.perform(.unbind(missing, driver: "nvidia")) }
                        == Errno.operationNotSupportedByDevice)
                #expect(
                    errno { try kernel.perform(.driversProbe(missing)) }
                        == Errno.operationNotSupportedByDevice)
                #expect(errno { try kernel.perform(.reset(missing)) } == Errno.operationNotSupportedByDevice)
                #expect(
                    errno { try kernel.perform(.driverOverride(missing, "x")) }
                        == Errno.operationNotSupportedByDevice)
                #expect(
                    errno { try kernel.perform(.bind(gpu, driver: "nouveau")) } == Errno.noSuchFileOrDirectory
                )
                #expect(kernel.writes.last?.error?.errno == Errno.noSuchFileOrDirectory)
            }
        }

        @Test func probeSucceedsWhenNothingBinds() throws {
            try withDemoHost { host in
                let gpu = bdf("0039:01:00.0")
                try host.kernel.perform(.driverOverride(gpu, "not_loaded"))
                try host.kernel.perform(.unbind(gpu, driver: "nvidia"))
                try host.kernel.perform(.driversProbe(gpu))
                #expect(host.root.readLink(host.root.device(gpu) + "/driver") == nil)
            }
        }

        @Test func resetMethodAndPowerControl() throws {
            try withDemoHost { host in
                let kernel = host.kernel
                let gpu = bdf("0009:01:00.0")
                let file = host.root.device(gpu) + "/reset_method"
                #expect(errno { try kernel.perform(.resetMethod(gpu, "bus")) } == Errno.invalidArgument)
                #expect(errno { try kernel.perform(.resetMethod(gpu, "flr bogus")) } == Errno.invalidArgument)
                #expect(try host.root.readString(file) == "flr")
                try kernel.perform(.resetMethod(gpu, ""))
                #expect(try host.root.readString(file) == "")
                #expect(errno { try kernel.perform(.reset(gpu)) } == Errno.inappropriateIOCTLForDevice)
                try kernel.perform(.resetMethod(gpu, "default"))
                #expect(try host.root.readString(file) == "flr")

                let h100 = bdf("0000:c3:00.0")
                try kernel.perform(.resetMethod(h100, "bus flr"))
                #expect(try host.root.readString(host.root.device(h100) + "/reset_method") == "bus flr")

                // No method at enumeration: no reset file at all.
                #expect(
                    errno { try kernel.perform(.reset(bdf("0009:00:00.0"))) } == Errno.noSuchFileOrDirectory)

                try kernel.perform(.powerControl(gpu, "on"))
                #expect(try host.root.readString(host.root.device(gpu) + "/power/control") == "on")
                #expect(try host.root.readString(host.root.device(gpu) + "/power_state") == "D0")
                #expect(errno { try kernel.perform(.powerControl(gpu, "off")) } == Errno.invalidArgument)
            }
        }

        @Test func removeAndRescan() throws {
            try withDemoHost { host in
                let gpu = bdf("0009:01:00.0")
                try host.kernel.perform(.remove(gpu))
                #expect(!host.root.exists(host.root.device(gpu)))
                #expect(!host.root.exists("bus/pci/drivers/nvgrace_gpu_vfio_pci/\(gpu)"))
                #expect(host.root.list("kernel/iommu_groups").contains("10") == false)
                try host.kernel.perform(.rescan)
                // A fresh pci_dev: no override, the boot-time driver.
                #expect(host.root.linkName(host.root.device(gpu) + "/driver") == "nvidia")
                #expect(try host.root.readString(host.root.device(gpu) + "/driver_override") == "(null)")
                #expect(host.root.resolve(host.root.device(gpu) + "/iommu_group") != nil)
            }
        }

        @Test func rescanOfOneBusFindsOnlyWhatIsBelowIt() throws {
            try withDemoHost { host in
                let gpu = bdf("0009:01:00.0")
                let other = bdf("0019:01:00.0")
                try host.kernel.perform(.remove(gpu))
                try host.kernel.perform(.remove(other))
                // The GPU's root port sits on bus 0009:00: its rescan reaches 0009:01 below it only.
                try host.kernel.perform(.rescanBus(bdf("0009:00:00.0")))
                #expect(host.root.exists(host.root.device(gpu)))
                #expect(!host.root.exists(host.root.device(other)))
                #expect(throws: KernelError.self) { try host.kernel.perform(.rescanBus(other)) }
                try host.kernel.perform(.rescan)
                #expect(host.root.exists(host.root.device(other)))
            }
        }
    }
}
