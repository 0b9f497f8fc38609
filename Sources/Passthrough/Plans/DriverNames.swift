/// The driver names plans reason about, and what each kind means for owning a device.
public enum DriverNames {
    public static let vfioPCI = "vfio-pci"
    /// The PCIe port service driver: bridges are bound to it and it holds nothing a reset or a VM
    /// cares about.
    public static let pcieport = "pcieport"
    /// The kernel's VFIO allow list for group viability has exactly this one non-VFIO driver.
    public static let pciStub = "pci-stub"

    /// vfio-pci itself or a VFIO variant driver (`nvgrace_gpu_vfio_pci`, `mlx5_vfio_pci`): the names
    /// end in `vfio_pci` (module names) or `vfio-pci`.
    public static func isVFIO(_ name: String) -> Bool {
        name.hasSuffix("vfio_pci") || name.hasSuffix("vfio-pci")
    }
}
