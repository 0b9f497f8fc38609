/// The kernel's random id of the current boot (`/proc/sys/kernel/random/boot_id`): what tells a
/// restart of graced from a reboot of the host.
public enum BootId {
    /// Its relative path under the procfs root.
    public static let path = "sys/kernel/random/boot_id"

    /// The id, or nil when it cannot be read or is not the kernel's 36-character UUID.
    public static func read(procRoot: String) -> String? {
        guard let id = SysfsRoot(path: procRoot).readOptionalString(path), id.utf8.count == 36,
            id.utf8.allSatisfy({ HexNumber.isHexDigit($0) || $0 == UInt8(ascii: "-") })
        else { return nil }
        return id
    }
}
