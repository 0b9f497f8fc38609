import Passthrough

/// The simulated `/dev/vfio`: `vfio` (the container, always there) and one node per IOMMU group.
///
/// The kernel creates `/dev/vfio/<group>` when the first device of the group registers with VFIO
/// (binds to vfio-pci or a variant) and removes it when the last one goes. The node existing does
/// not make the group usable: that also needs every other member on a VFIO driver or on none, which
/// only opening the group tells ("group is not viable"). The nodes are empty regular files standing
/// for the character devices.
extension SimulatedKernel {
    func syncVFIONodes(_ state: inout State) throws(KernelError) {
        var groups: Set<Int> = []
        for device in state.devices.values {
            if let driver = device.function.driver, RuntimePower.isVFIODriver(driver),
                let group = device.function.iommuGroup
            {
                groups.insert(group)
            }
        }
        let files = TreeFiles(root: SysfsRoot(path: devRoot))
        for group in groups.subtracting(state.vfioNodes).sorted() {
            try files.create("vfio/\(group)", [], mode: 0o600)
        }
        for group in state.vfioNodes.subtracting(groups).sorted() { files.remove("vfio/\(group)") }
        state.vfioNodes = groups
    }
}
