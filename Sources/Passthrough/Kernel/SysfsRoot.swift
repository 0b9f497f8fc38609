#if canImport(Glibc)
    import Glibc
#endif

/// The read half of the kernel seam: a sysfs tree under a root folder (`/sys` in production).
///
/// Everything GraceAPI learns about the host is a plain file read under this root, so the same code
/// reads the real /sys, a fixture tree in a test, and the simulator's tree.
public struct SysfsRoot: Sendable, Hashable {
    /// The folder that plays the part of `/sys`.
    public let path: String
    /// Counts (and may slow) the config-space reads made through this root; nil outside the
    /// simulator, whose reads of plain files would otherwise be free and invisible.
    public let configReads: ConfigReadMeter?

    public init(path: String, configReads: ConfigReadMeter? = nil) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self.configReads = configReads
    }

    /// The same tree, its config reads counted by `meter`.
    public func metered(by meter: ConfigReadMeter) -> SysfsRoot {
        SysfsRoot(path: path, configReads: meter)
    }

    /// The folder libpci wants as `sysfs.path`: the one holding `devices/`.
    public var pciBusPath: String { path + "/bus/pci" }

    /// `bus/pci/devices/<bdf>`, relative to the root.
    public func device(_ bdf: BDF) -> String { "bus/pci/devices/\(bdf)" }

    public func absolute(_ relative: String) -> String { path + "/" + relative }

    /// The whole file as bytes. Throws the errno of open or read.
    public func readBytes(_ relative: String, limit: Int = 1 << 20) throws(KernelError) -> [UInt8] {
        let full = absolute(relative)
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw KernelError(code: errno, path: relative)
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        configReads?.record(file: relative, offset: 0, count: result.count)
        return result
    }

    /// Up to `count` bytes at `offset` (config space reads of a single register).
    public func readBytes(_ relative: String, offset: Int, count: Int) throws(KernelError) -> [UInt8] {
        let fd = open(absolute(relative), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard got >= 0 else { throw KernelError(code: errno, path: relative) }
        configReads?.record(file: relative, offset: offset, count: got)
        return Array(buffer[0..<got])
    }

    /// The file as text without its trailing newline.
    public func readString(_ relative: String) throws(KernelError) -> String {
        var bytes = try readBytes(relative, limit: 64 << 10)
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The text, or nil when the file is absent or unreadable (optional attributes).
    public func readOptionalString(_ relative: String) -> String? {
        try? readString(relative)
    }

    /// A sysfs attribute's text without its trailing newline, or nil when it is absent or unreadable:
    /// `readOptionalString` in one `read` where it can. The kernel hands an attribute over whole in
    /// the first read (at most a page), as libpci reads them, so a short read is the end; only a full
    /// page is read on to the end.
    public func readAttribute(_ relative: String) -> String? {
        let fd = open(absolute(relative), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return Self.readAttribute(fd: fd)
    }

    /// `readAttribute` of a file already open.
    static func readAttribute(fd: Int32) -> String? {
        let page = 4096
        var bytes = [UInt8](repeating: 0, count: page)
        var got = 0
        while true {
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            got += count
            guard count > 0, got == bytes.count, got < 64 << 10 else { break }
            bytes += [UInt8](repeating: 0, count: page)
        }
        while got > 0, bytes[got - 1] == UInt8(ascii: "\n") || bytes[got - 1] == 0 { got -= 1 }
        return String(decoding: bytes[0..<got], as: UTF8.self)
    }

    /// The target of a symbolic link, as stored (usually relative).
    public func readLink(_ relative: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(absolute(relative), &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The last path component of a link's target: `driver` -> `vfio-pci`, `iommu_group` -> `12`.
    public func linkName(_ relative: String) -> String? {
        guard let target = readLink(relative) else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// The canonical absolute path (links resolved), or nil if it does not exist.
    public func resolve(_ relative: String) -> String? {
        guard let resolved = realpath(absolute(relative), nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Entry names of a folder, sorted; empty when it does not exist.
    public func list(_ relative: String) -> [String] {
        guard let dir = opendir(absolute(relative)) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// What the name is, without following a link; nil when it does not exist.
    public func entry(_ relative: String) -> SysfsEntry? {
        var status = stat()
        guard lstat(absolute(relative), &status) == 0 else { return nil }
        switch status.st_mode & S_IFMT {
        case S_IFREG: return .file(size: UInt64(status.st_size), readable: status.st_mode & 0o444 != 0)
        case S_IFDIR: return .folder
        case S_IFLNK: return .link
        default: return .other
        }
    }

    public func exists(_ relative: String) -> Bool {
        access(absolute(relative), F_OK) == 0
    }
}
