import Passthrough

/// A write that puts back what a job changed (`power/control`, `reset_method`), in the form the job's
/// record keeps, so that a job found interrupted at startup can still carry it out.
struct OwedRestore: Codable, Sendable, Equatable {
    enum Attribute: String, Codable, Sendable {
        case powerControl = "power/control"
        case resetMethod = "reset_method"
    }

    var attribute: Attribute
    var bdf: String
    var value: String

    /// The restores a job can owe; other writes are carried out on the spot and not recorded.
    init?(_ write: SysfsWrite) {
        switch write {
        case .powerControl(let bdf, let value):
            (attribute, self.bdf, self.value) = (.powerControl, bdf.description, value)
        case .resetMethod(let bdf, let value):
            (attribute, self.bdf, self.value) = (.resetMethod, bdf.description, value)
        default:
            return nil
        }
    }

    var write: SysfsWrite? {
        guard let device = BDF(bdf) else { return nil }
        return switch attribute {
        case .powerControl: .powerControl(device, value)
        case .resetMethod: .resetMethod(device, value)
        }
    }
}
