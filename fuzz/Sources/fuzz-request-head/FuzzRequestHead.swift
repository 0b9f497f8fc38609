@testable import GraceAPI
@testable import GraceHTTP

/// The first bytes of a connection as the head gate judges them (`GateClient.examine` without the
/// socket): the request line, the fields, the request line's problem, the body framing and the
/// answer the gate would write. Never a trap, whatever the bytes. The head is read out of a slice
/// that does not start at index 0, as the gate's buffer may hand it over.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes: [UInt8] = [0] + (data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    let head = bytes[1...]
    let requestLine = RequestHead.requestLine(head)
    switch RequestHead.read(head) {
    case .complete(let line, let headers):
        precondition(line == requestLine, "two readings of the request line")
        if let problem = MalformedHead.requestLineProblem(line) {
            _ = problem.serialized(reason: MalformedHead.reason(problem.status))
        }
        switch RequestFraming.read(headers) {
        case .success(let framing):
            _ = framing
        case .failure(.answeredByMHD(let status, let detail)), .failure(.refused(let status, let detail)):
            let problem = RequestFraming.problem(status: status, detail: detail)
            _ = problem.serialized(reason: MalformedHead.reason(problem.status))
        }
        // The handler's view of the same request: its target split into path and query.
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        if parts.count == 3 {
            let request = HTTPRequest(
                method: String(decoding: parts[0], as: UTF8.self),
                rawTarget: String(decoding: parts[1], as: UTF8.self), headers: headers)
            _ = (request.path, request.query)
        }
    case .malformed:
        _ = MalformedHead.malformed("A header line has no colon.").serialized(
            reason: MalformedHead.reason(400))
    case .incomplete:
        _ = MalformedHead.tooLarge(limit: HeadGate.headLimit).serialized(reason: MalformedHead.reason(431))
    }
    return 0
}
