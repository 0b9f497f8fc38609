/// Every write GraceAPI makes to the kernel, as a value.
///
/// This is the only way effects cross the seam: the Linux kernel writer turns a value into a write of
/// `value` to `path` under the sysfs root; the simulated kernel applies the same meaning to its tree.
public enum SysfsWrite: Hashable, Sendable, CustomStringConvertible {
    /// `bus/pci/devices/<bdf>/driver_override`; an empty string clears it (written as a newline).
    case driverOverride(BDF, String)
    /// `bus/pci/drivers/<driver>/unbind` with the BDF.
    case unbind(BDF, driver: String)
    /// `bus/pci/drivers/<driver>/bind` with the BDF.
    case bind(BDF, driver: String)
    /// `bus/pci/drivers_probe` with the BDF.
    case driversProbe(BDF)
    /// `bus/pci/devices/<bdf>/reset` with `1`.
    case reset(BDF)
    /// `bus/pci/devices/<bdf>/reset_method`: space-separated names, or `default`.
    case resetMethod(BDF, String)
    /// `bus/pci/devices/<bdf>/power/control`: `on` or `auto`.
    case powerControl(BDF, String)
    /// `bus/pci/devices/<bdf>/remove` with `1`.
    case remove(BDF)
    /// `bus/pci/rescan` with `1`.
    case rescan
    /// `bus/pci/devices/<bdf>/rescan` with `1`: the kernel rescans the bus that device sits on and
    /// everything below it (`pci_rescan_bus(pdev->bus)`), not the whole host. Written to the parent
    /// bridge of a removed function, it finds that function again without bringing back what
    /// someone removed elsewhere on purpose.
    case rescanBus(BDF)

    /// The attribute, relative to the sysfs root.
    public var path: String {
        switch self {
        case .driverOverride(let bdf, _): "bus/pci/devices/\(bdf)/driver_override"
        case .unbind(_, let driver): "bus/pci/drivers/\(driver)/unbind"
        case .bind(_, let driver): "bus/pci/drivers/\(driver)/bind"
        case .driversProbe: "bus/pci/drivers_probe"
        case .reset(let bdf): "bus/pci/devices/\(bdf)/reset"
        case .resetMethod(let bdf, _): "bus/pci/devices/\(bdf)/reset_method"
        case .powerControl(let bdf, _): "bus/pci/devices/\(bdf)/power/control"
        case .remove(let bdf): "bus/pci/devices/\(bdf)/remove"
        case .rescan: "bus/pci/rescan"
        case .rescanBus(let bdf): "bus/pci/devices/\(bdf)/rescan"
        }
    }

    /// The bytes written, as the kernel expects them.
    public var value: String {
        switch self {
        case .driverOverride(_, let name): name.isEmpty ? "\n" : name
        case .unbind(let bdf, _), .bind(let bdf, _), .driversProbe(let bdf): bdf.description
        case .reset, .remove, .rescan, .rescanBus: "1"
        case .resetMethod(_, let methods): methods
        case .powerControl(_, let mode): mode
        }
    }

    /// The device the write is about, if any.
    public var device: BDF? {
        switch self {
        case .driverOverride(let bdf, _), .unbind(let bdf, _), .bind(let bdf, _), .driversProbe(let bdf),
            .reset(let bdf), .resetMethod(let bdf, _), .powerControl(let bdf, _), .remove(let bdf):
            bdf
        case .rescan, .rescanBus: nil
        }
    }

    public var description: String { "\(path) <- \(value.debugDescription)" }
}

/// The write half of the kernel seam.
///
/// Implementations block until the kernel answers (a reset can take a minute; an unbind of a device
/// in use can take forever), so callers run them on dedicated threads, never on Swift's cooperative pool.
public protocol KernelWriter: Sendable {
    func perform(_ write: SysfsWrite) throws(KernelError)
}
