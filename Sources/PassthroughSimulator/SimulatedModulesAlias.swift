import Passthrough

/// The simulated host's `modules.alias` (`/lib/modules/$(uname -r)/modules.alias`), as depmod writes
/// it: which module claims which device.
///
/// VFIO variant drivers are listed under the `vfio_pci:` prefix (their ID tables use
/// `PCI_DRIVER_OVERRIDE_DEVICE_VFIO`), so they never autoload for a plain `pci:` modalias; vfio_pci's
/// own catch-all line matches every device. A lookup for "the variant driver of this GPU" must
/// therefore prefer an exact vendor and device match over the wildcard.
public enum SimulatedModulesAlias {
    /// The file's text: nvgrace_gpu_vfio_pci for each device ID given, the vfio_pci catch-all, and
    /// the `pci:` aliases of the host's native drivers.
    public static func text(nvgraceDevices: [UInt16]) -> String {
        var lines = ["# Aliases extracted from modules themselves."]
        for device in nvgraceDevices.sorted() {
            lines.append(
                "alias vfio_pci:v000010DEd0000\(upperHex(device))sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci")
        }
        lines += [
            "alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci",
            "alias pci:v000010DEd*sv*sd*bc03sc00i00* nvidia",
            "alias pci:v000010DEd*sv*sd*bc03sc02i00* nvidia",
            "alias pci:v000010DEd*sv*sd*bc04sc03i00* snd_hda_intel",
            "alias pci:v*d*sv*sd*bc04sc03i00* snd_hda_intel",
            "alias pci:v000015B3d00001021sv*sd*bc*sc*i* mlx5_core",
            "alias pci:v000015B3d0000101Dsv*sd*bc*sc*i* mlx5_core",
            "alias pci:v*d*sv*sd*bc01sc08i02* nvme",
            "alias pci:v*d*sv*sd*bc05sc02i10* cxl_pci",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func upperHex(_ value: UInt16) -> String {
        hex(value, width: 4).uppercased()
    }
}
