import Passthrough

/// Runtime power management as the kernel applies it to a simulated function.
///
/// vfio-pci and its variant drivers allow runtime suspend while nobody has the device open, so an
/// idle VFIO-bound function drops to D3hot when `power/control` is `auto`; native drivers keep their
/// devices awake as far as this simulator is concerned. In D3hot a function still answers config
/// requests but its memory BARs read all-ones, which is what a reader of `resource0` must cope with.
public enum RuntimePower: String, Sendable, Hashable {
    case active
    case suspended

    /// The `power/control` values the kernel accepts.
    public static let controlValues: Set<String> = ["on", "auto"]

    /// vfio-pci itself, or a variant driver (`nvgrace_gpu_vfio_pci`, `mlx5_vfio_pci`, ...).
    public static func isVFIODriver(_ name: String) -> Bool {
        name == "vfio-pci" || name.hasSuffix("vfio_pci")
    }

    /// Whether the function is runtime suspended.
    ///
    /// `inResetWrite` is true while a `reset` write is in progress: `reset_store()` wakes the device
    /// with `pm_runtime_get_sync()` for the reset and lets it go afterwards.
    public static func state(driver: String?, control: String, held: Bool, inResetWrite: Bool) -> RuntimePower
    {
        guard let driver, isVFIODriver(driver), control == "auto", !held, !inResetWrite else {
            return .active
        }
        return .suspended
    }

    /// `power_state` (`pci_power_name()`).
    public var powerState: String { self == .suspended ? "D3hot" : "D0" }

    /// `power/runtime_status`.
    public var runtimeStatus: String { rawValue }

    /// PMCSR bits 1:0 (PowerState): 0 = D0, 3 = D3hot. Config reads do not wake a D3hot device, so
    /// the register shows the state.
    public var pmcsrPowerState: UInt16 { self == .suspended ? 0x3 : 0x0 }

    /// What a 32-bit memory read of a BAR returns in D3hot: the completion is an Unsupported Request.
    public static let allOnes: UInt32 = 0xFFFF_FFFF
}
