/// What a caller may do. Each role includes the ones below it: an operator may read, an admin may
/// do everything an operator may.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Every GET: GPUs, layouts, jobs, health, the contract.
    case viewer
    /// Reset, bind, unbind and cancel jobs.
    case `operator`
    /// Everything, including simulator faults and the audit trail.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool {
        lhs.rank < rhs.rank
    }

    /// `true` when a caller holding `self` may do what `required` allows.
    public func allows(_ required: Role) -> Bool {
        self >= required
    }
}
