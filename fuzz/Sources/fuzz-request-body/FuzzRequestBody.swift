@testable import GraceAPI

/// A request body of any bytes through the strict JSON check and the decoders of every body the API
/// takes: a value, or a 400 problem with a resolution, never a trap. The first byte picks the body
/// type, the rest is the body; the strict check also sees the whole input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    _ = StrictJSON.check(bytes).map(\.description)
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
