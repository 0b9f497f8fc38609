import GraceHTTP
import Passthrough

/// The problems more than one route answers with, worded once (the package's, for the routes of other
/// targets, such as the simulator's).
package enum CommonProblems {
    static func invalidBDF(_ raw: String) -> HTTPResponse {
        .problem(
            status: 400, slug: "invalid-bdf", title: "Invalid PCI address",
            detail:
                "'\(PercentDecoding.decode(raw).prefix(64))' is not a PCI address of the form DDDD:BB:DD.F.",
            resolution:
                "Send the GPU's address as four hex digits of domain, two of bus, two of device (00-1f) and a function 0-7, e.g. 0009:01:00.0; `GET /gpus` lists them."
        )
    }

    static func gpuNotFound(_ bdf: BDF) -> HTTPResponse {
        .problem(
            status: 404, slug: "gpu-not-found", title: "No such GPU",
            detail: "No managed GPU is at \(bdf) on this host.",
            resolution: "List the managed GPUs with `GET /gpus` and use one of their `bdf` values.")
    }

    package static func invalidBody(_ detail: String, resolution: String) -> HTTPResponse {
        RequestBody.invalidBody(detail, resolution: resolution)
    }

    /// Parses a `{bdf}` path parameter, or answers 400. The segment arrives raw (routing never
    /// decodes, so `%2F` cannot become a slash) and is decoded here: clients that escape the colons
    /// (`0009%3A01%3A00.0`, as many URL builders do) name the same GPU, and the strict parse after
    /// decoding still refuses anything but hex digits, colons and a dot.
    package static func parseBDF(_ parameters: [String: String]) -> Result<BDF, ProblemResponse> {
        let raw = parameters["bdf"] ?? ""
        guard let bdf = BDF(PercentDecoding.decode(raw)) else {
            return .failure(ProblemResponse(response: invalidBDF(raw)))
        }
        return .success(bdf)
    }
}
