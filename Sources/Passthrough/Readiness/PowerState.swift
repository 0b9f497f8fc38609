/// A function's power management as sysfs shows it; each field is nil when its file is absent
/// (older kernels, devices without PM, a fixture that leaves it out).
///
/// Readiness needs it to explain all-ones reads: a function in D3hot answers only config requests,
/// so its BARs read all-ones without anything being wrong, and one in D3cold does not answer at all.
/// With runtime PM (`power/control` = `auto`) an idle vfio-pci device drops to D3hot by itself.
public struct PowerState: Hashable, Sendable, CustomStringConvertible {
    /// `power_state`: "D0", "D1", "D2", "D3hot", "D3cold", or "unknown".
    public var state: String?
    /// `power/runtime_status`: "active", "suspended", "suspending", "resuming", "error", "unsupported".
    public var runtimeStatus: String?
    /// `power/control`: "on" (runtime PM off) or "auto".
    public var control: String?

    public init(state: String?, runtimeStatus: String?, control: String?) {
        self.state = state
        self.runtimeStatus = runtimeStatus
        self.control = control
    }

    public static func read(bdf: BDF, root: SysfsRoot) -> PowerState {
        let folder = root.device(bdf)
        func attribute(_ name: String) -> String? {
            root.readOptionalString(folder + "/" + name).map { String(sysfsFields($0).first ?? "") }
        }
        return PowerState(
            state: attribute("power_state"), runtimeStatus: attribute("power/runtime_status"),
            control: attribute("power/control"))
    }

    /// D3hot or D3cold: memory reads of the BARs return all-ones there.
    public var isD3: Bool { state == "D3hot" || state == "D3cold" }

    public var isD3cold: Bool { state == "D3cold" }

    /// Whether a config read would power the function up: the kernel resumes a function in D3cold to
    /// serve one. Without `power_state` (older kernels) a runtime-suspended function may be in D3cold.
    public var configReadWakes: Bool {
        isD3cold || (state == nil && runtimeStatus == "suspended")
    }

    public var description: String {
        "power_state \(state ?? "absent"), runtime_status \(runtimeStatus ?? "absent"), "
            + "control \(control ?? "absent")"
    }
}
