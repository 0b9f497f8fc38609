/// Reads one kernel uevent datagram as the kernel sends it on NETLINK_KOBJECT_UEVENT:
/// `ACTION@DEVPATH\0` then `KEY=value\0` pairs (`ACTION`, `DEVPATH`, `SUBSYSTEM`, `SEQNUM`, and for a
/// PCI function `PCI_SLOT_NAME`, plus `DRIVER` on bind).
public enum UeventMessage {
    /// The event, when the datagram is a PCI function's add, remove, bind, unbind or change; nil
    /// for every other subsystem, for udev's re-broadcasts (they start with `libudev`) and for
    /// anything malformed.
    public static func parse(_ bytes: some Collection<UInt8>) -> DeviceEvent? {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: true)
        guard let header = fields.first, header.contains(UInt8(ascii: "@")) else { return nil }
        var action: String?
        var subsystem: String?
        var slot: String?
        var devicePath: String?
        for field in fields.dropFirst() {
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = String(decoding: field[field.startIndex..<equals], as: UTF8.self)
            let value = String(decoding: field[field.index(after: equals)...], as: UTF8.self)
            switch key {
            case "ACTION": action = value
            case "SUBSYSTEM": subsystem = value
            case "PCI_SLOT_NAME": slot = value
            case "DEVPATH": devicePath = value
            default: break
            }
        }
        guard subsystem == "pci", let action, let kind = DeviceEvent.Action(rawValue: action) else {
            return nil
        }
        // PCI_SLOT_NAME is there on every PCI function's event; DEVPATH's last part is the same name.
        let name = slot ?? devicePath.flatMap { $0.split(separator: "/").last.map(String.init) }
        guard let name, let bdf = BDF(name) else { return nil }
        return DeviceEvent(kind, bdf)
    }
}
