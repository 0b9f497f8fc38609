import GraceTestSupport
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

@Suite("libpci scanner")
struct PCIScannerTests {
    @Test("a tree libpci cannot parse throws instead of ending the process")
    func trappedError() throws {
        let folder = try TestFolder()
        try folder.makeDirectory("bus/pci/devices/not-a-bdf")
        #expect(throws: PCIScanError.self) {
            try PCIScanner.scan(SysfsRoot(path: folder.path))
        }
        // And the process is still here to scan again: the trap can be re-armed.
        #expect(throws: PCIScanError.self) {
            try PCIScanner.scan(SysfsRoot(path: folder.path))
        }
    }

    @Test("an empty bus scans to nothing")
    func emptyBus() throws {
        let folder = try TestFolder()
        try folder.makeDirectory("bus/pci/devices")
        #expect(try PCIScanner.scan(SysfsRoot(path: folder.path)).isEmpty)
    }
}

/// A temporary folder removed when the value goes away.
final class TestFolder {
    let path: String

    init() throws {
        path = makeTemporaryFolder("/tmp/grace-test-XXXXXX")
    }

    func makeDirectory(_ relative: String) throws {
        var current = path
        for component in relative.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw KernelError(code: errno, path: current) }
        }
    }

    deinit {
        try? TreeFiles(root: SysfsRoot(path: path)).removeTree("")
    }
}
