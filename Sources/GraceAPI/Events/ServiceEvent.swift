import GraceHTTP
import Store

/// One event of `GET /events`, with its JSON and its server-sent-events frame built once, when it is
/// published, and shared by every subscriber (an event sent to a thousand clients is encoded once).
///
/// JSON (`data:` line): `{"at":RFC 3339,"data":{payload},"gpu":BDF|null,"id":N|null,"job":id|null,
/// "type":name}`. The stream's own events (`stream.*`) have no id: they are not stored, and a client's
/// `Last-Event-ID` keeps pointing at the last real event.
public struct ServiceEvent: Sendable, Hashable {
    public let id: Int64?
    public let type: String
    public let atMs: Int64
    public let gpu: String?
    public let job: String?
    /// The payload, a JSON object.
    public let dataJSON: String
    /// The whole event as JSON (the `data:` line).
    public let json: [UInt8]
    /// `id: N\nevent: TYPE\ndata: JSON\n\n`.
    let frame: [UInt8]

    init(id: Int64?, type: String, atMs: Int64, gpu: String?, job: String?, dataJSON: String) {
        self.id = id
        self.type = type
        self.atMs = atMs
        self.gpu = gpu
        self.job = job
        self.dataJSON = dataJSON
        // Sorted keys, as every other body of the API; the payload goes in as it was encoded.
        var json = #"{"at":"# + Self.quoted(Timestamp.rfc3339(ms: atMs)) + #","data":"# + dataJSON
        json += #","gpu":"# + (gpu.map(Self.quoted) ?? "null")
        json += #","id":"# + (id.map { String($0) } ?? "null")
        json += #","job":"# + (job.map(Self.quoted) ?? "null")
        json += #","type":"# + Self.quoted(type) + "}"
        self.json = Array(json.utf8)
        var frame = id.map { "id: \($0)\n" } ?? ""
        // JSON text holds no raw newline (the encoder escapes them), so one `data:` line carries it.
        frame += "event: \(type)\ndata: \(json)\n\n"
        self.frame = Array(frame.utf8)
    }

    init(_ record: EventRecord) {
        self.init(
            id: record.id, type: record.type, atMs: record.atMs, gpu: record.gpu, job: record.job,
            dataJSON: record.dataJSON)
    }

    /// The event's RFC 3339 time.
    public var at: String { Timestamp.rfc3339(ms: atMs) }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public static func == (lhs: ServiceEvent, rhs: ServiceEvent) -> Bool { lhs.json == rhs.json }
    public func hash(into hasher: inout Hasher) { hasher.combine(json) }
}
