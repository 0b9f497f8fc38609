/// One sysfs attribute as a capture saw it: its text, or the errno its read failed with.
///
/// Some attributes exist and still cannot be read (`power/autosuspend_delay_ms` answers EIO on a
/// device without autosuspend), and that is a fact about the host worth keeping, so a failed read is
/// recorded as `{"errno": N, "error": "..."}` instead of being dropped.
public enum CapturedAttribute: Hashable, Sendable, Codable {
    /// The attribute's text exactly as read, trailing newline included.
    case text(String)
    /// The read failed with this errno; `error` is the C library's message for it.
    case failed(errno: Int32, error: String)

    /// The text, or nil for a failed read.
    public var text: String? {
        if case .text(let text) = self { return text }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case errno, error
    }

    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            self = .text(text)
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self = .failed(
            errno: try container.decode(Int32.self, forKey: .errno),
            error: try container.decodeIfPresent(String.self, forKey: .error) ?? "")
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .text(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .failed(let code, let message):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(code, forKey: .errno)
            try container.encode(message, forKey: .error)
        }
    }
}
