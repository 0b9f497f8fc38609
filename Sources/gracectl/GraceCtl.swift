import ArgumentParser
import BuildInfo
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
        discussion: """
            gracectl reaches graced on its Unix socket, \(GraceServer.defaultSocketPath), unless told \
            otherwise; graced knows the caller there by its user id. Over TCP graced wants a bearer \
            token (grace_ and 64 hex digits), which an admin creates with \
            `graced token create --name NAME --role operator`.

            For a graced that serves TLS, give --server https://HOST:PORT: gracectl checks graced's \
            certificate against --cacert (or the system's trust store) and the name or address given, \
            and sends nothing when it does not verify. --cert and --key present a client certificate \
            (for a graced started with --tls-client-ca).

            Every command that prints takes --output table (the default) or --output json: the API's \
            own objects, exactly as graced served them, for scripts and jq.

            Environment:
              GRACE_SERVER  graced's address when --server is not given
              GRACE_TOKEN   the bearer token when neither --token nor --token-file is given

            Exit status: 0 on success; 1 when graced cannot be reached, refuses the request \
            (401, 403, 429, ...) or a followed job does not succeed; 64 for a malformed command line.
            """,
        version: BuildInfo.versionLine("gracectl"),
        subcommands: [
            GPUs.self, GPU.self, Reset.self, Bind.self, Unbind.self, Jobs.self, JobCommand.self, Cancel.self,
            Watch.self,
        ])
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

/// The columns a GPU listing shows.
func printGPUs(_ gpus: [GPUSummary]) {
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

struct GPUs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpus", abstract: "List the managed GPUs.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions

    func run() throws {
        let response = try server.session().call("GET", "/gpus", expected: [200])
        if output.isJSON { return output.printBody(response) }
        struct List: Decodable { var items: [GPUSummary] }
        printGPUs(try response.decode(List.self).items)
    }
}

struct GPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu", abstract: "Show one GPU, or its layout history with --layout.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The GPU's PCI address, DDDD:BB:DD.F.") var bdf: String
    @Flag(help: "Show the memory layout and its snapshots instead.") var layout = false

    func run() throws {
        let response = try server.session().call(
            "GET", "/gpus/\(bdf)" + (layout ? "/layout" : ""), expected: [200])
        if output.isJSON { return output.printBody(response) }
        guard layout else { return printGPUs([try response.decode(GPUSummary.self)]) }
        struct History: Decodable {
            struct Snapshot: Decodable {
                var id: Int64
                var takenAt: String
                var drift: Bool
                var changes: String?
            }
            var snapshots: [Snapshot]
        }
        printTable(
            ["SNAPSHOT", "TAKEN", "DRIFT", "CHANGES"],
            try response.decode(History.self).snapshots.map {
                [String($0.id), $0.takenAt, $0.drift ? "yes" : "no", $0.changes ?? "-"]
            })
    }
}

/// Submits a job and, unless told not to, follows it to its end.
struct JobFollower {
    /// How long one request waits for the job to end.
    static let waitSeconds = 25

    var session: Session
    var follow: Bool
    var output: OutputOptions

    /// In JSON, only one object is printed: the plan of a dry run, the accepted job (without
    /// following), or the job as graced served it once it ended.
    func submit(_ path: String, body: String) throws {
        let response = try session.call("POST", path, body: body, expected: [200, 202])
        guard response.status == 202 else {
            print(response.text)  // a dry run's plan, JSON in either format
            return
        }
        var job = try response.decode(JobSummary.self)
        var served = response
        if !output.isJSON { print("job \(job.id): \(job.kind) of \(job.gpu) accepted") }
        guard follow else {
            if output.isJSON { output.printBody(served) }
            return
        }
        var shown = 0
        // graced answers a waiting GET when the job ends (or after the wait), without polling; the
        // phases it went through carry their own times.
        while true {
            if !output.isJSON { Self.printPhases(job, from: shown) }
            shown = job.phases.count
            if job.isFinished { break }
            (job, served) = try waitForEnd(job.id)
        }
        if output.isJSON {
            output.printBody(served)
        } else {
            Self.printOutcome(job)
        }
        guard job.state == "succeeded" else {
            let why = job.error.map { "\($0.detail)\n  what to do: \($0.resolution)" } ?? ""
            throw CommandFailure("job \(job.id) \(job.state): \(why)")
        }
        if !output.isJSON { print("job \(job.id) succeeded") }
    }

    static func printPhases(_ job: JobSummary, from shown: Int = 0) {
        for phase in job.phases.dropFirst(shown) {
            print("  \(phase.startedAt)  \(phase.name)")
        }
    }

    static func printOutcome(_ job: JobSummary) {
        if let readiness = job.readiness {
            print(
                "  readiness: \(readiness.probe) \(readiness.result) after \(readiness.waitedMs) ms, \(readiness.polls) polls"
            )
        }
        if let used = job.method.used { print("  method: \(used)") }
    }

    /// The job when it has ended, or as it is after `waitSeconds`, with graced's answer. Told to slow
    /// down, it waits as long as graced asks: the job runs on regardless, and giving up would leave
    /// the caller guessing how it ended.
    private func waitForEnd(_ id: String) throws -> (JobSummary, BlockingHTTPClient.Response) {
        while true {
            let response = try session.call(
                "GET", "/jobs/\(id)?wait=\(Self.waitSeconds)", expected: [200, 429])
            guard response.status == 429 else { return (try response.decode(JobSummary.self), response) }
            sleep(UInt32(min(max(response.retryAfterSeconds ?? 1, 1), 60)))
        }
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
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "auto, flr, pm, bus, cxl_bus, acpi, device_specific or af_flr.") var method: String?
    @Option(help: "Seconds before the job gives up (default: the probe's ceiling plus a margin).")
    var deadline: Double?
    @Flag(help: "Show the plan; touch nothing.") var dryRun = false
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(session: server.session(), follow: !noWait, output: output).submit(
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
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "auto (the VFIO variant from modules.alias, else vfio-pci), vfio-pci, or a driver name.")
    var driver: String?
    @Flag(help: "Bind the other functions of the IOMMU group too.") var group = false
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(session: server.session(), follow: !noWait, output: output).submit(
            "/gpus/\(bdf)/bind",
            body: jsonObject([("driver", quoted(driver)), ("group", group ? "true" : nil)]))
    }
}

struct Unbind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give a GPU back to its original driver, another driver, or none.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The GPU's PCI address.") var bdf: String
    @Option(help: "original, a driver name, or none.") var driver: String?
    @Flag(help: "Return once the job is accepted.") var noWait = false

    func run() throws {
        try JobFollower(session: server.session(), follow: !noWait, output: output).submit(
            "/gpus/\(bdf)/unbind", body: jsonObject([("driver", quoted(driver))]))
    }
}

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Option(help: "Only this GPU's jobs.") var gpu: String?
    @Option(help: "Only jobs in this state.") var state: String?
    @Option(help: "How many.") var limit = 20

    func run() throws {
        var query = "limit=\(limit)"
        if let gpu { query += "&gpu=\(gpu)" }
        if let state { query += "&state=\(state)" }
        let response = try server.session().call("GET", "/jobs?" + query, expected: [200])
        if output.isJSON { return output.printBody(response) }
        struct Page: Decodable { var items: [JobSummary] }
        printTable(
            ["ID", "KIND", "GPU", "STATE", "METHOD", "CREATED"],
            try response.decode(Page.self).items.map {
                [$0.id, $0.kind, $0.gpu, $0.state, $0.method.used ?? $0.method.requested, $0.createdAt]
            })
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The job's id.") var id: String

    func run() throws {
        let response = try server.session().call("GET", "/jobs/\(id)", expected: [200])
        if output.isJSON { return output.printBody(response) }
        let job = try response.decode(JobSummary.self)
        print("job \(job.id): \(job.kind) of \(job.gpu), \(job.state)")
        JobFollower.printPhases(job)
        JobFollower.printOutcome(job)
        if let error = job.error { print("  error: \(error.detail)\n  what to do: \(error.resolution)") }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job.")
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Argument(help: "The job's id.") var id: String

    func run() throws {
        let response = try server.session().call("DELETE", "/jobs/\(id)", expected: [202])
        if output.isJSON { return output.printBody(response) }
        print("cancellation of \(id) accepted")
    }
}
