import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// The file operations the simulator needs on its tree, each addressed relative to the sysfs root.
///
/// Errors carry the relative path so a failure reads like the kernel's (`KernelError` with errno).
/// Files the simulated kernel rewrites while readers may be polling are replaced atomically
/// (written beside, then renamed over), so a reader never sees a half-written attribute.
struct TreeFiles: Sendable {
    let root: SysfsRoot

    /// Creates the folder and any missing parents (`mkdir -p`).
    func makeFolders(_ relative: String) throws(KernelError) {
        // The root itself may be new too (a fresh folder given to the simulator).
        var path = root.path.hasPrefix("/") ? "" : "."
        for component in (root.path + "/" + relative).split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw KernelError(code: errno, path: relative)
            }
        }
    }

    /// Writes the whole file in place (creation time: nobody reads it yet).
    func create(_ relative: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(KernelError) {
        let fd = open(root.absolute(relative), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        try writeAll(fd, bytes, relative)
        // The creation mode is filtered by the umask; sysfs modes are fixed, so set them exactly.
        fchmod(fd, mode)
    }

    func create(_ relative: String, text: String, mode: mode_t = 0o644) throws(KernelError) {
        try create(relative, Array(text.utf8), mode: mode)
    }

    /// Replaces the file's contents so concurrent readers see either the old or the new bytes.
    func replace(_ relative: String, _ bytes: [UInt8]) throws(KernelError) {
        var status = stat()
        let mode: mode_t = stat(root.absolute(relative), &status) == 0 ? status.st_mode & 0o7777 : 0o644
        let slash = relative.lastIndex(of: "/")
        let folder = slash.map { String(relative[..<$0]) + "/" } ?? ""
        let name = slash.map { String(relative[relative.index(after: $0)...]) } ?? relative
        let temporary = folder + "." + name + ".new"
        try create(temporary, bytes, mode: mode)
        guard rename(root.absolute(temporary), root.absolute(relative)) == 0 else {
            let code = errno
            unlink(root.absolute(temporary))
            throw KernelError(code: code, path: relative)
        }
    }

    func replace(_ relative: String, text: String) throws(KernelError) {
        try replace(relative, Array(text.utf8))
    }

    /// A file of `size` bytes that takes no disk space (a BAR's `resourceN`).
    func createSparse(_ relative: String, size: UInt64, mode: mode_t = 0o600) throws(KernelError) {
        let fd = open(root.absolute(relative), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw KernelError(code: errno, path: relative) }
        fchmod(fd, mode)
    }

    /// Overwrites bytes at an offset; used for single aligned registers, which a reader sees whole.
    func patch(_ relative: String, offset: Int, _ bytes: [UInt8]) throws(KernelError) {
        let fd = open(root.absolute(relative), O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KernelError(code: errno, path: relative) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == bytes.count else { throw KernelError(code: errno, path: relative) }
    }

    /// A relative symbolic link at `relative` pointing at `target` (also relative to the root),
    /// spelled with as many `..` as the link's folder is deep, the way sysfs spells its links.
    func link(_ relative: String, to target: String) throws(KernelError) {
        let depth = relative.split(separator: "/").count - 1
        let spelled = String(repeating: "../", count: depth) + target
        unlink(root.absolute(relative))
        guard symlink(spelled, root.absolute(relative)) == 0 else {
            throw KernelError(code: errno, path: relative)
        }
    }

    /// Removes a file or link; absent is fine.
    func remove(_ relative: String) {
        unlink(root.absolute(relative))
    }

    /// Removes a folder and everything under it without following links out of it.
    func removeTree(_ relative: String) throws(KernelError) {
        try removeTree(absolute: root.absolute(relative), relative: relative)
    }

    private func removeTree(absolute: String, relative: String) throws(KernelError) {
        var status = stat()
        guard lstat(absolute, &status) == 0 else {
            if errno == ENOENT { return }
            throw KernelError(code: errno, path: relative)
        }
        if status.st_mode & S_IFMT != S_IFDIR {
            guard unlink(absolute) == 0 || errno == ENOENT else {
                throw KernelError(code: errno, path: relative)
            }
            return
        }
        for name in SysfsRoot(path: absolute).list("") {
            try removeTree(absolute: absolute + "/" + name, relative: relative + "/" + name)
        }
        guard rmdir(absolute) == 0 || errno == ENOENT else { throw KernelError(code: errno, path: relative) }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], _ relative: String) throws(KernelError) {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw KernelError(code: errno, path: relative)
            }
            done += count
        }
    }
}
