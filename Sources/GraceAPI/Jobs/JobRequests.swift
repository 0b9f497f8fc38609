import Passthrough

/// `POST /gpus/{bdf}/reset` body. Every field is optional; unknown fields are refused.
struct ResetRequest: Codable, Sendable {
    var method: ResetMethod?
    var deadlineSeconds: Double?
    var dryRun: Bool?

    static let fields: Set<String> = ["method", "deadlineSeconds", "dryRun"]
}

/// `POST /gpus/{bdf}/bind` body.
struct BindRequest: Codable, Sendable {
    /// `auto` (the VFIO variant driver from modules.alias, else vfio-pci), `vfio-pci`, or a driver name.
    var driver: String?
    /// Bind the other functions of the IOMMU group too.
    var group: Bool?
    var deadlineSeconds: Double?
    /// False: do not record the drivers this bind leaves as the functions' desired ones.
    var persist: Bool?

    static let fields: Set<String> = ["driver", "group", "deadlineSeconds", "persist"]
}

/// `POST /gpus/{bdf}/unbind` body.
struct UnbindRequest: Codable, Sendable {
    /// `original` (the driver recorded when the service bound it), a driver name, or `none`.
    var driver: String?
    var deadlineSeconds: Double?
    /// False: do not record the outcome as the function's desired driver.
    var persist: Bool?

    static let fields: Set<String> = ["driver", "deadlineSeconds", "persist"]
}

/// What a reconcile job was asked (its `requestJSON`): the desired driver, nil for none.
struct ReconcileRequest: Codable, Sendable {
    var driver: String?
}
