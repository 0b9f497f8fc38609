import GraceAPI
import GraceHTTP
import Passthrough
import PassthroughSimulator

/// `GET` and `PUT /simulator/devices/{bdf}/faults`: fault injection, registered only on a simulated
/// host (everywhere else the paths are 404 like any unknown path).
enum SimulatorRoutes {
    static let knownFields: Set<String> = [
        "readyAfterMs", "neverReady", "busyWrites", "hangWriteMs", "vanishOnReset", "resetWriteMs",
        "allOnes", "d3cold", "degradedLink", "ineffectiveMethods", "recoversOnlyAfterRescan",
        "heldInReset", "holdResetWrite",
    ]

    static func register(in router: inout Router, simulator: SimulatedKernel) {
        router.get("/simulator/devices/{bdf}/faults", role: .admin) { _, parameters in
            .respond(
                withDevice(parameters) { bdf throws(KernelError) in
                    .json(FaultsView(try simulator.faults(for: bdf)))
                })
        }
        router.put("/simulator/devices/{bdf}/faults", role: .admin) { request, parameters in
            .respond(
                withDevice(parameters) { bdf throws(KernelError) in
                    switch parseFaults(request.body) {
                    case .failure(let problem): return problem.response
                    case .success(let patch):
                        return .json(FaultsView(try simulator.setFaults(patch, for: bdf)))
                    }
                })
        }
    }

    /// The faults in force as the API answers them: every field, null where no fault is injected
    /// (for `readyAfterMs` and `resetWriteMs`, null means the device's own timing). The request's
    /// patch leaves fields out instead, which there means "keep".
    struct FaultsView: Encodable {
        @NullEncodable var readyAfterMs: Int?
        @NullEncodable var neverReady: Bool?
        @NullEncodable var busyWrites: Int?
        @NullEncodable var hangWriteMs: Int?
        @NullEncodable var vanishOnReset: Bool?
        @NullEncodable var resetWriteMs: Int?
        @NullEncodable var allOnes: Bool?
        @NullEncodable var d3cold: Bool?
        @NullEncodable var degradedLink: Bool?
        @NullEncodable var ineffectiveMethods: [String]?
        @NullEncodable var recoversOnlyAfterRescan: Bool?
        @NullEncodable var heldInReset: Bool?
        @NullEncodable var holdResetWrite: Bool?

        init(_ faults: SimulatorFaults) {
            readyAfterMs = faults.readyAfterMs
            neverReady = faults.neverReady
            busyWrites = faults.busyWrites
            hangWriteMs = faults.hangWriteMs
            vanishOnReset = faults.vanishOnReset
            resetWriteMs = faults.resetWriteMs
            allOnes = faults.allOnes
            d3cold = faults.d3cold
            degradedLink = faults.degradedLink
            ineffectiveMethods = faults.ineffectiveMethods
            recoversOnlyAfterRescan = faults.recoversOnlyAfterRescan
            heldInReset = faults.heldInReset
            holdResetWrite = faults.holdResetWrite
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

    /// The largest value of each integer field: an hour for a duration (the longest job deadline),
    /// a million writes. Beyond them a fault would only wedge the simulated host for good.
    static let maximums: [String: Int] = [
        "readyAfterMs": 3_600_000, "busyWrites": 1_000_000, "hangWriteMs": 3_600_000,
        "resetWriteMs": 3_600_000,
    ]

    /// A fault patch: a JSON object with only the known fields, integers from 0 to their maximum.
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
            let maximum = maximums[name] ?? Int.max
            if let value, value < 0 || value > maximum {
                return .failure(
                    ProblemResponse(
                        response: CommonProblems.invalidBody(
                            "\(name) must be from 0 to \(maximum) (got \(value)).",
                            resolution:
                                "Send durations in milliseconds up to an hour and counts up to a million.")))
            }
        }
        if let methods = faults.ineffectiveMethods,
            let unknown = methods.first(where: { !SimulatedKernel.resetMethodNames.contains($0) })
                ?? (methods.count > SimulatedKernel.resetMethodNames.count ? methods.last : nil)
        {
            return .failure(
                ProblemResponse(
                    response: CommonProblems.invalidBody(
                        "ineffectiveMethods names '\(unknown.prefix(40))', not a kernel reset method (or too many).",
                        resolution: "Name each of "
                            + SimulatedKernel.resetMethodNames.sorted().joined(separator: ", ")
                            + " at most once; [] clears the fault.")))
        }
        return .success(faults)
    }
}
