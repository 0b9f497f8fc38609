import Passthrough

/// `GET` and `PUT /simulator/devices/{bdf}/faults`: fault injection, registered only on a simulated
/// host (everywhere else the paths are 404 like any unknown path).
enum SimulatorRoutes {
    static let knownFields: Set<String> = [
        "readyAfterMs", "neverReady", "busyWrites", "hangWriteMs", "vanishOnReset", "resetWriteMs",
    ]

    static func register(in router: inout Router, simulator: SimulatedKernel) {
        router.get("/simulator/devices/{bdf}/faults", role: .admin) { _, parameters in
            .respond(
                withDevice(parameters) { bdf throws(KernelError) in
                    .json(try simulator.faults(for: bdf))
                })
        }
        router.put("/simulator/devices/{bdf}/faults", role: .admin) { request, parameters in
            .respond(
                withDevice(parameters) { bdf throws(KernelError) in
                    switch parseFaults(request.body) {
                    case .failure(let problem): return problem.response
                    case .success(let patch): return .json(try simulator.setFaults(patch, for: bdf))
                    }
                })
        }
    }

    private static func withDevice(
        _ parameters: [String: String], _ body: (BDF) throws(KernelError) -> HTTPResponse
    ) -> HTTPResponse {
        switch CommonProblems.parseBDF(parameters) {
        case .failure(let problem): return problem.response
        case .success(let bdf):
            do {
                return try body(bdf)
            } catch {
                return .problem(
                    status: 404, slug: "simulated-device-not-found", title: "No such simulated device",
                    detail: "The simulated host has no device at \(bdf) (\(error.name)).",
                    resolution:
                        "Use the address of a device the simulator created; `GET /gpus` lists the GPUs.")
            }
        }
    }

    /// A fault patch: a JSON object with only the known fields, integers not negative.
    static func parseFaults(_ body: [UInt8]) -> Result<SimulatorFaults, ProblemResponse> {
        let faults: SimulatorFaults
        switch RequestBody.decode(SimulatorFaults.self, from: body, fields: knownFields) {
        case .failure(let problem): return .failure(problem)
        case .success(let decoded): faults = decoded
        }
        for (name, value) in [
            ("readyAfterMs", faults.readyAfterMs), ("busyWrites", faults.busyWrites),
            ("hangWriteMs", faults.hangWriteMs), ("resetWriteMs", faults.resetWriteMs),
        ] {
            if let value, value < 0 {
                return .failure(
                    ProblemResponse(
                        response: CommonProblems.invalidBody(
                            "\(name) must not be negative (got \(value)).",
                            resolution: "Send durations and counts as whole numbers of 0 or more.")))
            }
        }
        return .success(faults)
    }
}
