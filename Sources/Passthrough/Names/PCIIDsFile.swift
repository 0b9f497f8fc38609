import CPCI

#if canImport(Glibc)
    import Glibc
#endif

/// Why a pci.ids file given to graced cannot be used.
public struct PCIIDsFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot use \(path) as pci.ids: \(reason)" }
}

/// A pci.ids file that libpci reads instead of its default (`/usr/share/misc/pci.ids`).
public enum PCIIDsFile {
    /// Checks that the file can be opened and that libpci parses it, as a scan will.
    public static func check(_ path: String) throws(PCIIDsFileError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PCIIDsFileError(path: path, reason: String(cString: strerror(errno)))
        }
        var status = stat()
        let statted = fstat(descriptor, &status)
        close(descriptor)
        guard statted == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw PCIIDsFileError(path: path, reason: "not a regular file")
        }
        var error = [CChar](repeating: 0, count: 512)
        let loaded = PCIScanner.lock.withLock { _ in
            error.withUnsafeMutableBufferPointer { message in
                grace_pci_check_names(path, message.baseAddress, message.count)
            }
        }
        switch loaded {
        case 1:
            return
        case 0:
            throw PCIIDsFileError(path: path, reason: "libpci cannot open it")
        default:
            let message = String(
                decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PCIIDsFileError(
                path: path, reason: "libpci cannot parse it (" + trimmed(message) + ")")
        }
    }

    private static func trimmed(_ text: String) -> String {
        var text = Substring(text)
        while let last = text.last, last == "\n" || last == " " { text = text.dropLast() }
        return String(text)
    }
}
