/// What a name in a sysfs folder is, seen without following it (`lstat`).
public enum SysfsEntry: Hashable, Sendable {
    /// A regular file: an attribute, `config`, or a BAR's `resourceN`. `readable` is false for the
    /// write-only attributes (`reset`, `remove`, `bind`), whose reads fail whoever reads them.
    case file(size: UInt64, readable: Bool)
    case folder
    case link
    /// Anything else (a device node, a socket); sysfs has none.
    case other
}
