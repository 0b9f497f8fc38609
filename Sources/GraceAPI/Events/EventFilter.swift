/// Which events a subscriber wants: one GPU's (nil: all) and some types (nil: all). The stream's own
/// events (`stream.*`) pass every filter.
public struct EventFilter: Sendable, Hashable {
    public var gpu: String?
    public var types: Set<String>?

    public init(gpu: String? = nil, types: Set<String>? = nil) {
        self.gpu = gpu
        self.types = types
    }

    public static let all = EventFilter()

    func matches(_ event: ServiceEvent) -> Bool {
        if let control = EventType(rawValue: event.type), control.isStreamControl { return true }
        if let gpu, event.gpu != gpu { return false }
        if let types, !types.contains(event.type) { return false }
        return true
    }
}
