import Passthrough
import PassthroughSimulator
import Testing

@testable import GraceAPI
@testable import GraceHTTP

@Suite("Parallel describe")
struct ParallelDescribeTests {
    @Test("a large scan described on several threads is the one-thread description, in order")
    func sameAsOneThread() throws {
        let host = try SimulatedHost.createTemporary(prefix: "graceapi-parallel")
        defer { try? host.removeFiles() }
        let template = try #require(SimulatedHost.demoFunctions.first { $0.bdf == BDF("0000:c3:00.0") })
        // Functions three to an IOMMU group, so that groups straddle the threads' shares.
        let functions = (0..<(ParallelDescribe.threshold + 45)).compactMap { index -> SimulatedFunction? in
            guard let bdf = BDF(domain: 0, bus: UInt8(index / 8), device: UInt8(index % 8), function: 0)
            else {
                return nil
            }
            var function = template
            function.bdf = bdf
            function.parent = nil
            function.iommuGroup = index / 3
            function.numaNode = index % 2
            return function
        }
        let root = SysfsRoot(path: host.folder + "/large")
        try SysfsTreeBuilder(root: root, functions: functions, drivers: SimulatedHost.demoDrivers).build()
        let inventory = HostInventory(root: root)
        let scanned = try inventory.managedFunctions()
        #expect(scanned.count == functions.count)
        let parallel = ParallelDescribe.describe(scanned, with: inventory)
        #expect(parallel == inventory.describe(scanned))
        #expect(parallel.map(\.bdf) == scanned.map(\.bdf.description))
        #expect(parallel.filter { $0.iommuGroup?.members.count == 3 }.count == functions.count / 3 * 3)
    }
}
