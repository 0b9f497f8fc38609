/// An optional that encodes as JSON `null` when it is nil, instead of leaving its key out.
///
/// The API's contract lists every member of an answer as required, with `null` where a value does
/// not apply or could not be read: a client should be able to tell "no IOMMU group" from "a server
/// too old to report one". Swift's synthesized `Encodable` calls `encodeIfPresent` for an optional
/// and so drops the key; wrapping the property makes it call `encode`, which this type answers with
/// `encodeNil()`. Decoding still takes a missing key as nil (see the `KeyedDecodingContainer`
/// extension below), so bodies stored or sent before the change keep decoding.
@propertyWrapper
public struct NullEncodable<Wrapped> {
    public var wrappedValue: Wrapped?

    public init(wrappedValue: Wrapped?) {
        self.wrappedValue = wrappedValue
    }
}

extension NullEncodable: Encodable where Wrapped: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue {
            try container.encode(wrappedValue)
        } else {
            try container.encodeNil()
        }
    }
}

extension NullEncodable: Decodable where Wrapped: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }
}

extension NullEncodable: Equatable where Wrapped: Equatable {}
extension NullEncodable: Hashable where Wrapped: Hashable {}
extension NullEncodable: Sendable where Wrapped: Sendable {}

extension KeyedDecodingContainer {
    /// Synthesized `Decodable` asks for a wrapped property with `decode`, which throws on a missing
    /// key; this overload is more specific, so it is chosen instead and reads a missing key as nil.
    public func decode<Wrapped: Decodable>(
        _ type: NullEncodable<Wrapped>.Type, forKey key: Key
    ) throws -> NullEncodable<Wrapped> {
        NullEncodable(wrappedValue: try decodeIfPresent(Wrapped.self, forKey: key))
    }
}
