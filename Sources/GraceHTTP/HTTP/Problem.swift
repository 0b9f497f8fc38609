/// RFC 9457 problem details, served as `application/problem+json`.
///
/// Every problem carries a `resolution`: one sentence telling the client what to do next, so an
/// operator reading a failed call never has to guess.
public struct Problem: Sendable, Encodable {
    public static let mediaType = "application/problem+json"
    public static let typeBase = "https://graceapi.dev/problems/"

    /// A URI naming the kind of problem, or `about:blank` when the status says it all.
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var instance: String?
    public var resolution: String
    /// Extra members (e.g. `holders`, `allowed`). Names that clash with the standard members are
    /// dropped so a problem can never contradict itself.
    public var extensions: [String: any Encodable & Sendable]

    public init(
        type: String = "about:blank", title: String, status: Int, detail: String, instance: String? = nil,
        resolution: String, extensions: [String: any Encodable & Sendable] = [:]
    ) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.resolution = resolution
        self.extensions = extensions
    }

    /// A problem whose type is `https://graceapi.dev/problems/<slug>`.
    public init(
        slug: String, title: String, status: Int, detail: String, instance: String? = nil,
        resolution: String, extensions: [String: any Encodable & Sendable] = [:]
    ) {
        self.init(
            type: Self.typeBase + slug, title: title, status: status, detail: detail, instance: instance,
            resolution: resolution, extensions: extensions)
    }

    static let standardMembers: Set<String> = ["type", "title", "status", "detail", "instance", "resolution"]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(type, forKey: Key("type"))
        try container.encode(title, forKey: Key("title"))
        try container.encode(status, forKey: Key("status"))
        try container.encode(detail, forKey: Key("detail"))
        try container.encodeIfPresent(instance, forKey: Key("instance"))
        try container.encode(resolution, forKey: Key("resolution"))
        for (name, value) in extensions where !Self.standardMembers.contains(name) {
            try container.encode(value, forKey: Key(name))
        }
    }

    /// The JSON body. If an extension member cannot be encoded, the problem is still served
    /// without its extensions: an error about an error must not turn into a third one.
    public func jsonBytes() -> [UInt8] {
        if let bytes = try? HTTPResponse.encodeJSON(self) {
            return bytes
        }
        var bare = self
        bare.extensions = [:]
        return (try? HTTPResponse.encodeJSON(bare)) ?? Array(#"{"status":500}"#.utf8)
    }
}
