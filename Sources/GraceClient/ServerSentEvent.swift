/// One event of a `text/event-stream`, as its fields read.
public struct ServerSentEvent: Sendable, Equatable {
    /// Absent on events that carry no id (graced's `stream.*`).
    public var id: String?
    public var event: String
    public var data: String

    public init(id: String?, event: String, data: String) {
        self.id = id
        self.event = event
        self.data = data
    }

    /// Parses one block (the text between blank lines); nil for comments and `retry:` alone.
    static func parse(block: Substring) -> ServerSentEvent? {
        var event = ServerSentEvent(id: nil, event: "message", data: "")
        var hasData = false
        for line in block.split(separator: "\n", omittingEmptySubsequences: true) {
            guard !line.hasPrefix(":") else { continue }
            let name = line.prefix { $0 != ":" }
            var value = line.dropFirst(name.count).dropFirst()
            if value.hasPrefix(" ") { value = value.dropFirst() }
            switch name {
            case "id": event.id = String(value)
            case "event": event.event = String(value)
            case "data":
                event.data += (hasData ? "\n" : "") + value
                hasData = true
            default: break
            }
        }
        return hasData ? event : nil
    }
}
