/// A device's memory layout as recorded at one moment.
public struct LayoutSnapshot: Hashable, Sendable {
    public var id: Int64
    public var deviceId: Int64
    public var takenAtMs: Int64
    /// Canonically encoded by the caller, so equal layouts are equal text.
    public var layoutJSON: String
    /// True when this layout differs from the one recorded before it for the same device.
    public var drift: Bool
    /// What changed relative to the previous snapshot; nil for the first one.
    public var changeSummary: String?

    public init(
        id: Int64, deviceId: Int64, takenAtMs: Int64, layoutJSON: String, drift: Bool, changeSummary: String?
    ) {
        self.id = id
        self.deviceId = deviceId
        self.takenAtMs = takenAtMs
        self.layoutJSON = layoutJSON
        self.drift = drift
        self.changeSummary = changeSummary
    }
}
