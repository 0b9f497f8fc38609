/// Looks at a set of functions and says who holds each: processes with the function's VFIO group
/// or VFIO device node open, and drivers that a rule says are in the way.
///
/// One procfs scan covers all the groups involved, so a plan reads `/proc` once however many
/// functions it touches.
struct HolderSurvey {
    let topology: HostTopology
    let processes: ProcessTable

    /// The functions in BDF order, `target` marked as such. `driverHolds(bdf, driver)` decides
    /// whether a bound driver counts as a holder; unbound functions never do.
    func survey(_ functions: [BDF], target: BDF, driverHolds: (BDF, String) -> Bool) -> [AffectedFunction] {
        let nodes = Dictionary(
            functions.map { ($0, Set(topology.vfioNodes($0))) }, uniquingKeysWith: { first, _ in first })
        let open = processes.holders(ofAny: nodes.values.reduce(into: Set<String>()) { $0.formUnion($1) })
        return Set(functions).sorted().map { bdf in
            let driver = topology.driver(bdf)
            let holders = open.filter { nodes[bdf]?.contains($0.path) == true }
            return AffectedFunction(
                bdf: bdf, driver: driver, role: bdf == target ? .target : .sibling, holders: holders,
                heldByDriver: driver.map { driverHolds(bdf, $0) } ?? false)
        }
    }
}
