/// Misbehaviour injected into one simulated device; every field is optional so a JSON patch can name
/// only what it changes.
///
/// "No fault" has one spelling: nil. Setting `false` or `0` clears a field, and so does using it up
/// (busy writes counted down, a hang served). `readyAfterMs` is different: 0 means ready at once, and
/// a negative value clears it back to the device's own delay.
public struct SimulatorFaults: Codable, Hashable, Sendable {
    /// How long after a reset the device is ready again (overrides the device's default).
    public var readyAfterMs: Int?
    /// A reset leaves the device not ready until another reset without this fault.
    public var neverReady: Bool?
    /// The next N reset writes fail with EBUSY.
    public var busyWrites: Int?
    /// The next reset write blocks its caller this long before the kernel acts on it.
    public var hangWriteMs: Int?
    /// The next reset removes the device: the write fails with ENODEV and the device is gone until
    /// a rescan.
    public var vanishOnReset: Bool?

    public init(
        readyAfterMs: Int? = nil, neverReady: Bool? = nil, busyWrites: Int? = nil, hangWriteMs: Int? = nil,
        vanishOnReset: Bool? = nil
    ) {
        self.readyAfterMs = readyAfterMs
        self.neverReady = neverReady
        self.busyWrites = busyWrites
        self.hangWriteMs = hangWriteMs
        self.vanishOnReset = vanishOnReset
    }

    public var isEmpty: Bool { self == SimulatorFaults() }

    /// The fields the patch names replace ours; the others keep their value. Then normalised.
    public func merging(_ patch: SimulatorFaults) -> SimulatorFaults {
        SimulatorFaults(
            readyAfterMs: patch.readyAfterMs ?? readyAfterMs,
            neverReady: patch.neverReady ?? neverReady,
            busyWrites: patch.busyWrites ?? busyWrites,
            hangWriteMs: patch.hangWriteMs ?? hangWriteMs,
            vanishOnReset: patch.vanishOnReset ?? vanishOnReset
        ).normalized
    }

    var normalized: SimulatorFaults {
        var result = self
        if let value = result.readyAfterMs, value < 0 { result.readyAfterMs = nil }
        if result.neverReady == false { result.neverReady = nil }
        if let value = result.busyWrites, value <= 0 { result.busyWrites = nil }
        if let value = result.hangWriteMs, value <= 0 { result.hangWriteMs = nil }
        if result.vanishOnReset == false { result.vanishOnReset = nil }
        return result
    }
}
