import ArgumentParser
import GraceClient

#if canImport(Glibc)
    import Glibc
#endif

/// The command-line client: lists GPUs and jobs, and runs resets, binds and unbinds, following a job's
/// phases until it ends (exit status 0 only when it succeeded).
@main
struct GraceCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gracectl",
        abstract: "Talk to graced: list GPUs, reset, bind and unbind them, follow and cancel jobs.",
        subcommands: [
            GPUs.self, GPU.self, Reset.self, Bind.self, Unbind.self, Jobs.self, JobCommand.self, Cancel.self,
        ])
}

struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("graced's address.", valueName: "host:port"))
    var server = "127.0.0.1:8080"

    func client() throws -> BlockingHTTPClient {
        guard let colon = server.lastIndex(of: ":"), let port = UInt16(server[server.index(after: colon)...])
        else {
            throw ValidationError("--server takes HOST:PORT, e.g. 127.0.0.1:8080")
        }
        return BlockingHTTPClient(host: String(server[..<colon]), port: port)
    }
}

/// Fails with the problem's words when the answer is not `expected`.
func check(_ response: BlockingHTTPClient.Response, _ expected: Set<Int>) throws {
    guard expected.contains(response.status) else {
        if let problem = try? response.decode(ProblemSummary.self) {
            throw CommandFailure("\(problem.title): \(problem.detail)\n  what to do: \(problem.resolution)")
        }
        throw CommandFailure("HTTP \(response.status): \(response.text)")
    }
}

struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        let padded = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }
        print(padded.joined(separator: "  "))
    }
}

struct GPUs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpus", abstract: "List the managed GPUs.")
    @OptionGroup var server: ServerOptions

    func run() throws {
        let response = try server.client().request("GET", "/gpus")
        try check(response, [200])
        struct List: Decodable { var items: [GPUSummary] }
        let gpus = try response.decode(List.self).items
        printTable(
            ["BDF", "ID", "NAME", "DRIVER", "PROBE", "STATE"],
            gpus.map {
                [
                    $0.bdf, "\($0.vendorId.dropFirst(2)):\($0.deviceId.dropFirst(2))", $0.deviceName,
                    $0.driver ?? "-",
                    $0.readinessProbe, $0.state,
                ]
            })
    }
}

struct GPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu", abstract: "Show one GPU (JSON), or its layout history with --layout.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The GPU's PCI address, DDDD:BB:DD.F.") var bdf: String
    @Flag(help: "Show the memory layout and its snapshots instead.") var layout = false

    func run() throws {
        let response = try server.client().request("GET", "/gpus/\(bdf)" + (layout ? "/layout" : ""))
        try check(response, [200])
        print(response.text)
    }
}

/// Submits a job and, unless told not to, follows it to its end.
struct JobFollower {
    var client: BlockingHTTPClient
    var follow: Bool

    func submit(_ path: String, body: String) throws {
        let response = try client.request("POST", path, body: body)
        try check(response, [200, 202])
        guard response.status == 202 else {
            print(response.text)  // a dry run's plan
            return
        }
        var job = try response.decode(JobSummary.self)
        print("job \(job.id): \(job.kind) of \(job.gpu) accepted")
        guard follow else { return }
        var shown = 0
        while true {
            for phase in job.phases.dropFirst(shown) {
                print("  \(phase.startedAt)  \(phase.name)")
            }
            shown = job.phases.count
            if job.isFinished { break }
            usleep(50_000)
            job = try client.request("GET", "/jobs/\(job.id)").decode(JobSummary.self)
        }
        if let readiness = job.readiness {
            print(
                "  readiness: \(readiness.probe) \(readiness.result) after \(readiness.waitedMs) ms, \(readiness.polls) polls"
            )
        }
        if let used = job.method.used { print("  method: \(used)") }
        guard job.state == "succeeded" else {
            let why = job.error.map { "\($0.detail)\n  what to do: \($0.resolution)" } ?? ""
            throw CommandFailure("job \(job.id) \(job.state): \(why)")
        }
        print("job \(job.id) succeeded")
    }
}

/// A JSON object from the options that were given.
func jsonObject(_ fields: [(String, String?)]) -> String {
    "{" + fields.compactMap { name, value in value.map { "\"\(name)\": \($0)" } }.joined(separator: ", ")
        + "}"
}

func quoted(_ text: String?) -> String? {
    text.map { "\"" + $0.replacingQuotes() + "\"" }
}

extension String {
    fileprivate func replacingQuotes() -> String {
        var escaped = ""
        for character in self {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reset a GPU, wait until it is ready and verify its layout.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "auto, flr, pm, bus, cxl_bus, acpi, device_specific or af_flr.") var method: String?
    @Option(help: "Seconds before the job gives up (default: the probe's ceiling plus a margin).")
    var deadline: Double?
    @Flag(help: "Show the plan; touch nothing.") var dryRun = false
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(client: server.client(), follow: !noWait).submit(
            "/gpus/\(bdf)/reset",
            body: jsonObject([
                ("method", quoted(method)), ("deadlineSeconds", deadline.map { String($0) }),
                ("dryRun", dryRun ? "true" : nil),
            ]))
    }
}

struct Bind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bind a GPU to vfio-pci or its VFIO variant driver.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "auto (the VFIO variant from modules.alias, else vfio-pci), vfio-pci, or a driver name.")
    var driver: String?
    @Flag(help: "Bind the other functions of the IOMMU group too.") var group = false
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(client: server.client(), follow: !noWait).submit(
            "/gpus/\(bdf)/bind",
            body: jsonObject([("driver", quoted(driver)), ("group", group ? "true" : nil)]))
    }
}

struct Unbind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give a GPU back to its original driver, another driver, or none.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "original, a driver name, or none.") var driver: String?
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(client: server.client(), follow: !noWait).submit(
            "/gpus/\(bdf)/unbind", body: jsonObject([("driver", quoted(driver))]))
    }
}

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
    @OptionGroup var server: ServerOptions
    @Option(help: "Only this GPU's jobs.") var gpu: String?
    @Option(help: "Only jobs in this state.") var state: String?
    @Option(help: "How many.") var limit = 20

    func run() throws {
        var query = "limit=\(limit)"
        if let gpu { query += "&gpu=\(gpu)" }
        if let state { query += "&state=\(state)" }
        let response = try server.client().request("GET", "/jobs?" + query)
        try check(response, [200])
        struct Page: Decodable { var items: [JobSummary] }
        printTable(
            ["ID", "KIND", "GPU", "STATE", "METHOD", "CREATED"],
            try response.decode(Page.self).items.map {
                [$0.id, $0.kind, $0.gpu, $0.state, $0.method.used ?? $0.method.requested, $0.createdAt]
            })
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job (JSON).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The job's id.") var id: String

    func run() throws {
        let response = try server.client().request("GET", "/jobs/\(id)")
        try check(response, [200])
        print(response.text)
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The job's id.") var id: String

    func run() throws {
        let response = try server.client().request("DELETE", "/jobs/\(id)")
        try check(response, [202])
        print("cancellation of \(id) accepted")
    }
}
