/// Moving one function from its current driver to another, with the sysfs writes that do it.
public struct BindStep: Hashable, Sendable, Encodable {
    public var bdf: BDF
    /// The driver bound when the plan was made; nil when unbound.
    public var fromDriver: String?
    /// The driver that must be bound afterwards: the engine verifies the `driver` link against it.
    public var toDriver: String
    /// The `driver_override` value when the plan was made, so a failed bind can put it back.
    public var previousOverride: String?

    public init(bdf: BDF, fromDriver: String?, toDriver: String, previousOverride: String? = nil) {
        self.bdf = bdf
        self.fromDriver = fromDriver
        self.toDriver = toDriver
        self.previousOverride = previousOverride
    }

    /// The kernel's canonical sequence (libvirt's too): name the driver in `driver_override` so
    /// nothing else can match, release the device from its current driver, then let the bus probe it.
    /// `drivers_probe` succeeds even when nothing binds, hence the verification of `toDriver`.
    public var writes: [SysfsWrite] {
        var writes: [SysfsWrite] = [.driverOverride(bdf, toDriver)]
        if let fromDriver { writes.append(.unbind(bdf, driver: fromDriver)) }
        writes.append(.driversProbe(bdf))
        return writes
    }

    /// Undoes the step after a failure, given the driver bound now: the old override comes back
    /// first (so the probe matches the original driver again), then whatever took the device is
    /// released and the bus probes it. Nothing but the override when the original driver is still
    /// bound.
    public func revertWrites(currentDriver: String?) -> [SysfsWrite] {
        var writes: [SysfsWrite] = [.driverOverride(bdf, previousOverride ?? "")]
        guard currentDriver != fromDriver else { return writes }
        if let currentDriver { writes.append(.unbind(bdf, driver: currentDriver)) }
        if fromDriver != nil { writes.append(.driversProbe(bdf)) }
        return writes
    }

    private enum CodingKeys: String, CodingKey {
        case bdf, fromDriver, toDriver, previousOverride
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bdf.description, forKey: .bdf)
        try container.encodeIfPresent(fromDriver, forKey: .fromDriver)
        try container.encode(toDriver, forKey: .toDriver)
        try container.encodeIfPresent(previousOverride, forKey: .previousOverride)
    }
}
