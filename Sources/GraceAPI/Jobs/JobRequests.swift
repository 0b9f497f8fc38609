import Passthrough

/// `POST /gpus/{bdf}/reset` body. Every field is optional; unknown fields are refused.
struct ResetRequest: Codable, Sendable {
    var method: ResetMethod?
    var deadlineSeconds: Double?
    var dryRun: Bool?

    static let fields: Set<String> = ["method", "deadlineSeconds", "dryRun"]
}

/// `POST /gpus/{bdf}/bind` body.
struct BindRequest: Codable, Sendable {
    /// `auto` (the VFIO variant driver from modules.alias, else vfio-pci), `vfio-pci`, or a driver name.
    var driver: String?
    /// Bind the other functions of the IOMMU group too.
    var group: Bool?
    var deadlineSeconds: Double?
    /// False: do not record the drivers this bind leaves as the functions' desired ones.
    var persist: Bool?

    static let fields: Set<String> = ["driver", "group", "deadlineSeconds", "persist"]
}

/// `POST /gpus/{bdf}/unbind` body.
struct UnbindRequest: Codable, Sendable {
    /// `original` (the driver recorded when the service bound it), a driver name, or `none`.
    var driver: String?
    var deadlineSeconds: Double?
    /// False: do not record the outcome as the function's desired driver.
    var persist: Bool?

    static let fields: Set<String> = ["driver", "deadlineSeconds", "persist"]
}

/// What a reconcile job was asked (its `requestJSON`): the desired driver, nil for none.
struct ReconcileRequest: Codable, Sendable {
    var driver: String?
}

/// Decodes a JSON object body strictly: an empty body is `{}`; invalid JSON, a key given twice
/// (which JSONDecoder would silently resolve one way), unknown fields, `null` members and wrong types
/// are errors that say what is wrong.
package enum RequestBody {
    package static func decode<T: Decodable>(
        _ type: T.Type, from body: [UInt8], fields: Set<String>
    ) -> Result<T, ProblemResponse> {
        let bytes =
            body.allSatisfy { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 } ? Array("{}".utf8) : body
        let resolution =
            "Send a JSON object with only these fields: \(fields.sorted().joined(separator: ", "))."
        if let failure = StrictJSON.check(bytes) {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "The body is not JSON read one way only: \(failure).", resolution: resolution)))
        }
        guard let keys = try? JSON.decode([String: AnyJSON].self, from: bytes) else {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "The body is not a JSON object.", resolution: resolution)))
        }
        if let unknown = keys.keys.sorted().first(where: { !fields.contains($0) }) {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "Unknown field '\(Self.bounded(unknown))'.", resolution: resolution)))
        }
        // The decoder would take null as "left out"; the contract types no request member as
        // nullable, and null cannot mean "default" in one body and "none" in an answer.
        if let null = keys.filter(\.value.isNull).keys.sorted().first {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "Field '\(Self.bounded(null))' is null.",
                        resolution: "Leave a field out for its default; " + resolution)))
        }
        do {
            return .success(try JSON.decode(type, from: bytes))
        } catch {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "A field has the wrong type or value: \(Self.bounded(describe(error), to: 200)).",
                        resolution: resolution)))
        }
    }

    /// Input echoed in a problem is cut to `limit` characters: an answer never grows with what the
    /// client sent (a 60 KB `method` value was echoed whole).
    static func bounded(_ text: String, to limit: Int = 64) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "… (\(text.utf8.count) bytes)"
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context),
            .keyNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Any JSON value; only used to read an object's keys and which of them are null.
    private struct AnyJSON: Decodable {
        let isNull: Bool

        init(from decoder: any Decoder) throws {
            isNull = (try? decoder.singleValueContainer().decodeNil()) ?? false
        }
    }
}
