/// One line of the audit log: who did what to which target.
public struct AuditEntry: Hashable, Sendable {
    public var id: Int64
    public var atMs: Int64
    public var actor: String
    public var action: String
    public var target: String
    public var detailJSON: String

    public init(id: Int64, atMs: Int64, actor: String, action: String, target: String, detailJSON: String) {
        self.id = id
        self.atMs = atMs
        self.actor = actor
        self.action = action
        self.target = target
        self.detailJSON = detailJSON
    }
}
