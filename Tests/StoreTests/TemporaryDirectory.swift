import GraceTestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh directory for file databases, removed with its contents when released.
final class TemporaryDirectory {
    let path: String

    init() {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        path = makeTemporaryFolder("\(base)/grace-store-XXXXXX")
    }

    func file(_ name: String) -> String {
        "\(path)/\(name)"
    }

    func exists(_ name: String) -> Bool {
        access(file(name), F_OK) == 0
    }

    deinit {
        // SQLite leaves only plain files (-wal, -shm) next to the database, so one level suffices.
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafePointer(to: entry.pointee.d_name) { tuple in
                    tuple.withMemoryRebound(
                        to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)
                    ) {
                        String(cString: $0)
                    }
                }
                if name != "." && name != ".." {
                    unlink(file(name))
                }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
