import FoundationEssentials

/// One JSON encoding for the whole API: sorted keys, so equal values give equal bytes (and equal ETags).
package enum JSON {
    package static func encode(_ value: some Encodable) -> [UInt8] {
        // Every value we encode is built from our own types; a failure here is a programming error.
        guard let bytes = try? HTTPResponse.encodeJSON(value) else {
            preconditionFailure("JSON encoding failed for \(type(of: value))")
        }
        return bytes
    }

    package static func encodeString(_ value: some Encodable) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    package static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
