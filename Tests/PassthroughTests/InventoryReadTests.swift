import Passthrough
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// How a scan reads the host (a folder held open per function, an IOMMU group listed once, the
/// parent bridge from the device link's text) gives what reading every file by its full path gave.
@Suite("Inventory reads")
struct InventoryReadTests {
    /// Every function of the demo host, whatever its class, so that groups with several members and
    /// functions behind bridges and on root buses are all described.
    static let everything = DeviceSelection(
        classPrefixes: (0..<256).compactMap { ClassPrefix(value: $0, bytes: 1) })

    @Test("one pass over every function describes each as a lone describe does")
    func passMatchesLone() throws {
        try withDemoHost { host in
            let inventory = HostInventory(root: host.root, selection: Self.everything)
            let functions = try inventory.managedFunctions()
            #expect(functions.count == 19)
            let together = inventory.describe(functions)
            #expect(together == functions.map { inventory.describe($0) })
            #expect(together.contains { ($0.iommuGroup?.members.count ?? 0) > 1 })
        }
    }

    @Test("the parent bridge from the device link is the one the resolved path names")
    func parentFromLink() throws {
        try withDemoHost { host in
            let inventory = HostInventory(root: host.root)
            let topology = HostTopology(root: host.root)
            for function in try PCIScanner.scan(host.root) {
                #expect(
                    inventory.parentBridge(function.bdf) == topology.parentBridge(function.bdf)?.description)
            }
            #expect(inventory.parentBridge(BDF("0000:c3:00.0")!) == "0000:c2:00.0")
            #expect(inventory.parentBridge(BDF("0009:00:00.0")!) == nil)
        }
    }

    @Test("a device link spelled another way (absolute) is resolved in full")
    func absoluteLink() throws {
        try withDemoHost { host in
            let link = host.root.absolute("bus/pci/devices/0000:c3:00.0")
            let resolved = try #require(host.root.resolve("bus/pci/devices/0000:c3:00.0"))
            #expect(unlink(link) == 0 && symlink(resolved, link) == 0)
            #expect(HostInventory(root: host.root).parentBridge(BDF("0000:c3:00.0")!) == "0000:c2:00.0")
        }
    }

    @Test("an attribute in one read is the file's text, however long, and nil when absent")
    func attributes() throws {
        try withDemoHost { host in
            let root = host.root
            let path = "bus/pci/devices/0000:c3:00.0"
            for name in ["numa_node", "resource", "reset_method", "driver_override", "max_link_speed"] {
                #expect(root.readAttribute(path + "/" + name) == root.readOptionalString(path + "/" + name))
            }
            #expect(root.readAttribute(path + "/no_such_file") == nil)
            let long = String(repeating: "0123456789abcdef", count: 700) + "\n"
            let file = root.absolute("long_attribute")
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(fd >= 0)
            _ = long.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, long.utf8.count) }
            close(fd)
            #expect(root.readAttribute("long_attribute") == String(long.dropLast()))
        }
    }
}
