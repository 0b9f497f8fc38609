#if canImport(Glibc)
    import Glibc
#endif

/// A folder under a `SysfsRoot` held open while several of its files are read: each read then looks
/// up one name (`openat`) where a path from the root walks every component again, through the
/// `bus/pci/devices` link, for each file. At 4096 functions those walks were most of the kernel's
/// share of a scan. Reads answer as `SysfsRoot`'s do; a folder that cannot be opened reads as empty.
public struct SysfsFolder: ~Copyable {
    /// The folder relative to the root, for errors and for what has no `at` form.
    public let relative: String
    private let fd: Int32
    /// The root's meter, told of every read of this folder's `config`.
    let configReads: ConfigReadMeter?

    init(root: SysfsRoot, relative: String) {
        self.relative = relative
        fd = open(root.absolute(relative), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        configReads = root.configReads
    }

    private init(relative: String, fd: Int32, configReads: ConfigReadMeter?) {
        self.relative = relative
        self.fd = fd
        self.configReads = configReads
    }

    /// The folder (or link to one) `name` in this folder, opened by one lookup.
    public func folder(_ name: String) -> SysfsFolder {
        SysfsFolder(
            relative: relative + "/" + name,
            fd: fd >= 0 ? openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1, configReads: configReads)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Opens a file in the folder for reading; -1 when it cannot.
    public func openFile(_ name: String) -> Int32 {
        guard fd >= 0 else { return -1 }
        return openat(fd, name, O_RDONLY | O_CLOEXEC)
    }

    /// `SysfsRoot.readAttribute` of the folder's file `name`.
    public func readAttribute(_ name: String) -> String? {
        let file = openFile(name)
        guard file >= 0 else { return nil }
        defer { close(file) }
        return SysfsRoot.readAttribute(fd: file)
    }

    /// `SysfsRoot.readBytes(_:offset:count:)` of the folder's file `name`.
    public func readBytes(_ name: String, offset: Int, count: Int) throws(KernelError) -> [UInt8] {
        let file = openFile(name)
        guard file >= 0 else { throw KernelError(code: errno, path: relative + "/" + name) }
        defer { close(file) }
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { pread(file, $0.baseAddress, count, off_t(offset)) }
        guard got >= 0 else { throw KernelError(code: errno, path: relative + "/" + name) }
        if name == "config" { configReads?.record(folder: relative, offset: offset, count: got) }
        return Array(buffer[0..<got])
    }

    /// `SysfsRoot.readRegisters` of the folder's file `name`: several ranges through one descriptor.
    public func readRegisters(_ name: String, _ ranges: [(offset: Int, count: Int)]) throws(KernelError)
        -> [[UInt8]]
    {
        let file = openFile(name)
        guard file >= 0 else { throw KernelError(code: errno, path: relative + "/" + name) }
        defer { close(file) }
        var results: [[UInt8]] = []
        for range in ranges {
            var buffer = [UInt8](repeating: 0, count: range.count)
            let got = buffer.withUnsafeMutableBytes {
                pread(file, $0.baseAddress, range.count, off_t(range.offset))
            }
            guard got >= 0 else { throw KernelError(code: errno, path: relative + "/" + name) }
            if name == "config" { configReads?.record(folder: relative, offset: range.offset, count: got) }
            results.append(Array(buffer[0..<got]))
        }
        return results
    }

    /// `SysfsRoot.readLink` of the folder's link `name`.
    public func readLink(_ name: String) -> String? {
        guard fd >= 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlinkat(fd, name, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `SysfsRoot.linkName` of the folder's link `name`.
    public func linkName(_ name: String) -> String? {
        readLink(name)?.split(separator: "/").last.map(String.init)
    }
}

extension SysfsRoot {
    /// Runs `body` with `relative` held open as a folder.
    public func withFolder<T>(_ relative: String, _ body: (borrowing SysfsFolder) throws -> T) rethrows -> T {
        let folder = SysfsFolder(root: self, relative: relative)
        return try body(folder)
    }
}
