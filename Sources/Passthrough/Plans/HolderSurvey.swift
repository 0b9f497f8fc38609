/// Looks at a set of functions and says who holds each: processes with the function's VFIO group
/// open, and drivers that a rule says are in the way.
///
/// One procfs scan covers all the groups involved, so a plan reads `/proc` once however many
/// functions it touches.
struct HolderSurvey {
    let topology: HostTopology
    let processes: ProcessTable

    /// The functions in BDF order, `target` marked as such. `driverHolds(bdf, driver)` decides
    /// whether a bound driver counts as a holder; unbound functions never do.
    func survey(_ functions: [BDF], target: BDF, driverHolds: (BDF, String) -> Bool) -> [AffectedFunction] {
        let groups = Dictionary(
            functions.compactMap { bdf in topology.iommuGroup(bdf).map { (bdf, $0) } },
            uniquingKeysWith: { first, _ in first })
        let paths = Set(groups.values.map(ProcessTable.vfioGroupPath))
        let open = processes.holders(ofAny: paths)
        return Set(functions).sorted().map { bdf in
            let driver = topology.driver(bdf)
            let holders =
                groups[bdf].map { group in
                    open.filter { $0.path == ProcessTable.vfioGroupPath(group) }
                } ?? []
            return AffectedFunction(
                bdf: bdf, driver: driver, role: bdf == target ? .target : .sibling, holders: holders,
                heldByDriver: driver.map { driverHolds(bdf, $0) } ?? false)
        }
    }
}
