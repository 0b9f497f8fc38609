extension PowerState {
    /// `read(bdf:root:)` through the function's folder held open: the health watch looks at every
    /// GPU every few seconds, and at 4096 GPUs the full-path walks of its reads were most of its cost.
    public static func read(in folder: borrowing SysfsFolder) -> PowerState {
        func attribute(_ name: String) -> String? {
            folder.readAttribute(name).map { String(sysfsFields($0).first ?? "") }
        }
        return PowerState(
            state: attribute("power_state"), runtimeStatus: attribute("power/runtime_status"),
            control: attribute("power/control"))
    }
}
