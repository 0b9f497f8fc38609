import Passthrough
import PassthroughSimulator

/// `grace-bench make-tree N DIR`: a sysfs-shaped tree of N GPU functions (H100s bound to vfio-pci,
/// each on its own bus and in its own IOMMU group) under DIR, for graced (`--sysfs DIR`) and for
/// `lspci -A linux-sysfs -O sysfs.path=DIR/bus/pci` to read the same files. Folders are
/// `devices/pciDDDD:BB/DDDD:BB:00.0` with `config`, `resource`, the attributes, `bus/pci/devices`
/// links, IOMMU groups and driver links, as the simulator writes them.
enum GeneratedTree {
    static func make(functions count: Int, at path: String) throws {
        guard
            let template = SimulatedHost.demoFunctions.first(where: {
                $0.bdf == BDF("0000:c3:00.0")
            })
        else { fatalError("the demo host lost its H100") }
        var functions: [SimulatedFunction] = []
        for index in 0..<count {
            guard
                let bdf = BDF(
                    domain: UInt16(index / 256), bus: UInt8(index % 256), device: 0, function: 0)
            else { continue }
            var function = template
            function.bdf = bdf
            function.parent = nil
            function.iommuGroup = index
            function.numaNode = index % 2
            function.irq = 64 + index
            function.serialNumber = 0x48b0_2d03_0031_0000 + UInt64(index)
            functions.append(function)
        }
        let tree = try SysfsTreeBuilder(
            root: SysfsRoot(path: path), functions: functions, drivers: SimulatedHost.demoDrivers)
        try tree.build()
    }
}
