/// One event of the service's stream (`GET /events`) as the store keeps it.
public struct EventRecord: Hashable, Sendable {
    /// Increases with every event and is never reused, even after pruning.
    public var id: Int64
    public var type: String
    public var atMs: Int64
    /// The GPU's BDF, when the event is about one.
    public var gpu: String?
    /// The job's id, when the event is about one.
    public var job: String?
    /// The payload: a JSON object, stored as text.
    public var dataJSON: String

    public init(id: Int64, type: String, atMs: Int64, gpu: String?, job: String?, dataJSON: String) {
        self.id = id
        self.type = type
        self.atMs = atMs
        self.gpu = gpu
        self.job = job
        self.dataJSON = dataJSON
    }
}
