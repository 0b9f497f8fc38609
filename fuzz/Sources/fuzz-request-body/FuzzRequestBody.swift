@testable import GraceAPI
@testable import GraceHTTP
@testable import GraceSimulation

/// A request body of any bytes through the strict JSON check and the decoders of every body the API
/// takes: a value, or a 400 problem with a resolution, never a trap. The first byte picks the body
/// type, the rest is the body; the strict check also sees the whole input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let failure = StrictJSON.check(bytes) {
        _ = failure.description
    } else {
        // Read one way only: what the strict check passes, the decoder behind it reads too.
        do {
            _ = try JSON.decode(AnyValue.self, from: bytes)
        } catch {
            preconditionFailure("passed the strict check, refused by the decoder: \(error)")
        }
    }
    guard let selector = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    switch selector % 4 {
    case 0:
        expectProblemOnFailure(RequestBody.decode(ResetRequest.self, from: body, fields: ResetRequest.fields))
    case 1:
        expectProblemOnFailure(RequestBody.decode(BindRequest.self, from: body, fields: BindRequest.fields))
    case 2:
        expectProblemOnFailure(
            RequestBody.decode(UnbindRequest.self, from: body, fields: UnbindRequest.fields))
    default: expectProblemOnFailure(SimulatorRoutes.parseFaults(body))
    }
    return 0
}

private func expectProblemOnFailure<T>(_ result: Result<T, ProblemResponse>) {
    guard case .failure(let problem) = result else { return }
    precondition(problem.response.status == 400, "a body refused with \(problem.response.status)")
    let body = String(decoding: problem.response.body, as: UTF8.self)
    precondition(body.contains("\"resolution\""), "a refusal without a resolution: \(body)")
}

/// Any JSON value, its containers read all the way down. Scalars are not converted: a number the
/// strict check passes may still not fit a Swift number (`1e400`), which the body's own decoding
/// then refuses with a 400 problem.
private enum AnyValue: Decodable {
    case null, scalar, array([AnyValue]), object([String: AnyValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode([AnyValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: AnyValue].self) {
            self = .object(value)
        } else {
            self = .scalar
        }
    }
}
