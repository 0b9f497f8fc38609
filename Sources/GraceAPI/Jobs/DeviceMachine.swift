import Passthrough

/// The life of one device as the engine sees it: free, claimed by a job, shown in a state the job
/// imposes (resetting, not ready), or wedged by a kernel write that has not returned. One function
/// per event, each returning the state to show over what the inventory reads (nil: what it reads),
/// or nothing when the shown state does not change.
///
/// A device with no entry in the engine's table is free.
enum DeviceMachine: Sendable, Equatable {
    case claimed(job: String)
    case imposed(job: String, state: DeviceState)
    /// The kernel still holds the device in `write`; nothing is written to it until that returns.
    case wedged(write: SysfsWrite, job: String)

    enum Claim: Sendable, Equatable {
        case granted
        case busy(job: String)
        case wedged
    }

    /// What a new job may do with a device in this state (nil: free).
    static func claim(_ current: DeviceMachine?) -> Claim {
        switch current {
        case nil: .granted
        case .claimed(let job), .imposed(let job, _): .busy(job: job)
        case .wedged: .wedged
        }
    }

    var job: String {
        switch self {
        case .claimed(let job), .imposed(let job, _), .wedged(_, let job): job
        }
    }

    /// The state shown over the inventory's reading.
    var shown: DeviceState? {
        switch self {
        case .claimed: nil
        case .imposed(_, let state): state
        case .wedged: .wedged
        }
    }

    /// Change of the state shown: `.some(nil)` clears it, nil leaves it.
    typealias Show = DeviceState??

    /// The job shows the device in `state` (resetting, not ready) while it works on it.
    mutating func impose(_ state: DeviceState, by job: String) -> Show {
        switch self {
        case .claimed(job), .imposed(job, _):
            self = .imposed(job: job, state: state)
            return .some(state)
        default:
            return nil
        }
    }

    /// The job's work on the device is over (its outcome is about to show): the device is shown as
    /// the inventory reads it again, but stays claimed until the job has put things back.
    mutating func settle(by job: String) -> Show {
        guard case .imposed(job, _) = self else { return nil }
        self = .claimed(job: job)
        return .some(nil)
    }

    mutating func stuck(in write: SysfsWrite, by job: String) -> Show {
        self = .wedged(write: write, job: job)
        return .some(.wedged)
    }

    /// The job is done with the device. Returns the new entry (nil: free) and the change shown.
    func released(by job: String) -> (next: DeviceMachine?, show: Show) {
        switch self {
        case .claimed(job): (nil, nil)
        case .imposed(job, _): (nil, .some(nil))
        default: (self, nil)
        }
    }

    /// The write that wedged the device finally returned: it is free again.
    func unstuck(from write: SysfsWrite) -> (next: DeviceMachine?, show: Show) {
        guard case .wedged(write, _) = self else { return (self, nil) }
        return (nil, .some(nil))
    }
}
