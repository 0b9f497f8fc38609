/// A kernel uevent about one PCI function, reduced to what inventory needs: what happened and to
/// which function. The kernel sends these on NETLINK_KOBJECT_UEVENT; the simulator sends the same
/// ones when its writes add, remove, bind or unbind a function.
public struct DeviceEvent: Sendable, Hashable, CustomStringConvertible {
    /// The uevent `ACTION` values the PCI subsystem sends (`online`/`offline`/`move` are not sent
    /// for PCI functions and are dropped by the parser).
    public enum Action: String, Sendable, Hashable, CaseIterable {
        case add, remove, bind, unbind, change
    }

    public var action: Action
    public var bdf: BDF

    public init(_ action: Action, _ bdf: BDF) {
        self.action = action
        self.bdf = bdf
    }

    public var description: String { "\(action.rawValue) \(bdf)" }
}
