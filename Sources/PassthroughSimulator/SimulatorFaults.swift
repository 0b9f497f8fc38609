import Passthrough

/// Misbehaviour injected into one simulated device; every field is optional so a JSON patch can name
/// only what it changes.
///
/// "No fault" has one spelling: nil. Setting `false` or `0` clears a field, and so does using it up
/// (busy writes counted down, a hang served). `readyAfterMs` is different: 0 means ready at once, and
/// a negative value clears it back to the device's own delay. `resetWriteMs` is persistent: it applies
/// to every reset write until cleared with 0.
public struct SimulatorFaults: Codable, Hashable, Sendable {
    /// How long after a reset the device is ready again (overrides the device's default).
    public var readyAfterMs: Int?
    /// A reset leaves the device not ready until another reset without this fault; a device removed
    /// and rescanned while it is set comes back not ready too (nothing short of a power cycle helps).
    public var neverReady: Bool?
    /// The next N reset writes fail with EBUSY.
    public var busyWrites: Int?
    /// The next reset write blocks its caller this long before the kernel acts on it.
    public var hangWriteMs: Int?
    /// The next reset removes the device: the write fails with ENODEV and the device is gone until
    /// a rescan.
    public var vanishOnReset: Bool?
    /// How long every reset write takes while the kernel resets the device (the real FLR blocks its
    /// writer about 100 to 120 ms); overrides the device's own duration. Unlike `hangWriteMs` the
    /// device is awake and in reset meanwhile.
    public var resetWriteMs: Int?
    /// The device stops answering while it stays: its config space reads all-ones, as after a VM
    /// was killed ("Unknown header type 7f"). Lasts until cleared.
    public var allOnes: Bool?
    /// The device is powered off: `power_state` reads D3cold and config space all-ones. Lasts until
    /// cleared.
    public var d3cold: Bool?
    /// The link trains at 2.5 GT/s x1 whatever it can do (a bad riser or slot): Link Status and
    /// `current_link_speed`/`current_link_width` say so. Lasts until cleared.
    public var degradedLink: Bool?
    /// Reset methods whose write succeeds but leaves the device not ready (an FLR that does not
    /// clear a stale state): a reset through the first enabled method named here never brings the
    /// device back. Lasts until cleared with `[]`.
    public var ineffectiveMethods: [String]?
    /// No reset brings the device back; removing it and rescanning the bus does (it is enumerated
    /// afresh). Lasts until cleared.
    public var recoversOnlyAfterRescan: Bool?
    /// A reset leaves the device in reset (not ready) until this is cleared; then it comes back at
    /// once. Test equipment for a window the test controls (a cancel while the device is in reset)
    /// instead of one it hopes for.
    public var heldInReset: Bool?
    /// Every reset write blocks its writer, before the kernel acts on it, until this is cleared: a
    /// hung write the test releases when it chooses (`hangWriteMs` ends by itself).
    public var holdResetWrite: Bool?

    public init(
        readyAfterMs: Int? = nil, neverReady: Bool? = nil, busyWrites: Int? = nil, hangWriteMs: Int? = nil,
        vanishOnReset: Bool? = nil, resetWriteMs: Int? = nil, allOnes: Bool? = nil, d3cold: Bool? = nil,
        degradedLink: Bool? = nil, ineffectiveMethods: [String]? = nil, recoversOnlyAfterRescan: Bool? = nil,
        heldInReset: Bool? = nil, holdResetWrite: Bool? = nil
    ) {
        self.readyAfterMs = readyAfterMs
        self.neverReady = neverReady
        self.busyWrites = busyWrites
        self.hangWriteMs = hangWriteMs
        self.vanishOnReset = vanishOnReset
        self.resetWriteMs = resetWriteMs
        self.allOnes = allOnes
        self.d3cold = d3cold
        self.degradedLink = degradedLink
        self.ineffectiveMethods = ineffectiveMethods
        self.recoversOnlyAfterRescan = recoversOnlyAfterRescan
        self.heldInReset = heldInReset
        self.holdResetWrite = holdResetWrite
    }

    public var isEmpty: Bool { self == SimulatorFaults() }

    /// The fields the patch names replace ours; the others keep their value. Then normalised.
    public func merging(_ patch: SimulatorFaults) -> SimulatorFaults {
        SimulatorFaults(
            readyAfterMs: patch.readyAfterMs ?? readyAfterMs,
            neverReady: patch.neverReady ?? neverReady,
            busyWrites: patch.busyWrites ?? busyWrites,
            hangWriteMs: patch.hangWriteMs ?? hangWriteMs,
            vanishOnReset: patch.vanishOnReset ?? vanishOnReset,
            resetWriteMs: patch.resetWriteMs ?? resetWriteMs,
            allOnes: patch.allOnes ?? allOnes,
            d3cold: patch.d3cold ?? d3cold,
            degradedLink: patch.degradedLink ?? degradedLink,
            ineffectiveMethods: patch.ineffectiveMethods ?? ineffectiveMethods,
            recoversOnlyAfterRescan: patch.recoversOnlyAfterRescan ?? recoversOnlyAfterRescan,
            heldInReset: patch.heldInReset ?? heldInReset,
            holdResetWrite: patch.holdResetWrite ?? holdResetWrite
        ).normalized
    }

    var normalized: SimulatorFaults {
        var result = self
        if let value = result.readyAfterMs, value < 0 { result.readyAfterMs = nil }
        if result.neverReady == false { result.neverReady = nil }
        if let value = result.busyWrites, value <= 0 { result.busyWrites = nil }
        if let value = result.hangWriteMs, value <= 0 { result.hangWriteMs = nil }
        if result.vanishOnReset == false { result.vanishOnReset = nil }
        if let value = result.resetWriteMs, value <= 0 { result.resetWriteMs = nil }
        if result.allOnes == false { result.allOnes = nil }
        if result.d3cold == false { result.d3cold = nil }
        if result.degradedLink == false { result.degradedLink = nil }
        if result.ineffectiveMethods?.isEmpty == true { result.ineffectiveMethods = nil }
        if result.recoversOnlyAfterRescan == false { result.recoversOnlyAfterRescan = nil }
        if result.heldInReset == false { result.heldInReset = nil }
        if result.holdResetWrite == false { result.holdResetWrite = nil }
        return result
    }
}
