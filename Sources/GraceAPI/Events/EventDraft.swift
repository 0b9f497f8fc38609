import GraceHTTP
import Store

/// An event before it has an id: what a publisher says happened, its payload already encoded. The
/// hub numbers it when it stores it (`EventHub.publish`, `EventHub.commit`).
public struct EventDraft: Sendable, Equatable {
    public let type: EventType
    public let gpu: String?
    public let job: String?
    /// The payload, a JSON object.
    public let dataJSON: String

    /// `payload` must encode as a JSON object (anything else is wrapped as `{"value": ...}`); one that
    /// does not encode at all is sent as `{}`.
    public init(type: EventType, gpu: String? = nil, job: String? = nil, payload: some Encodable) {
        self.type = type
        self.gpu = gpu
        self.job = job
        if let bytes = try? HTTPResponse.encodeJSON(payload) {
            let text = String(decoding: bytes, as: UTF8.self)
            dataJSON = bytes.first == UInt8(ascii: "{") ? text : #"{"value":"# + text + "}"
        } else {
            dataJSON = "{}"
        }
    }
}
