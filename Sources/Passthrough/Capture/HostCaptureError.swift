/// Why a capture could not be read, or could not be turned into a tree.
public enum HostCaptureError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The bytes are not JSON of the capture format.
    case malformed(String)
    /// A `format` this reader does not know, or a `version` newer than it understands.
    case unsupported(format: String?, version: Int?)
    /// The capture parses but describes something that cannot be laid out as a tree (a path that
    /// leaves the tree, a key that is not a PCI address, a function whose parent is missing).
    case invalid(String)
    /// Writing the tree failed.
    case kernel(KernelError)

    public var description: String {
        switch self {
        case .malformed(let detail): "not a host capture: \(detail)"
        case .unsupported(let format, let version):
            "unsupported capture (format \(format ?? "none"), version \(version.map(String.init) ?? "none")); "
                + "this graced reads format \(HostCapture.formatName) up to version \(HostCapture.currentVersion)"
        case .invalid(let detail): "invalid capture: \(detail)"
        case .kernel(let error): "cannot build the captured tree: \(error)"
        }
    }
}
