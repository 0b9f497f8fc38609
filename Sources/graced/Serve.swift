import ArgumentParser
import GraceAPI
import Logging
import Passthrough
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// `graced serve` (the default subcommand): serves the host's GPUs over HTTP until SIGTERM or SIGINT.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the host's GPUs over a REST API (the default when no subcommand is given).",
        discussion:
            "graced reads the host through sysfs (or a simulated host with --simulate), records each GPU's "
            + "memory layout in SQLite and answers HTTP requests. SIGTERM or SIGINT stops it gracefully.")

    @Flag(
        help:
            "Run on a simulated host (GH200s, a CXL GPU, an H100, a NIC, an NVMe drive) built in a temporary folder."
    )
    var simulate = false

    @Option(help: ArgumentHelp("The sysfs root to read and write.", valueName: "root"))
    var sysfs = "/sys"

    @Option(help: ArgumentHelp("Address and port to listen on.", valueName: "host:port"))
    var listen = "127.0.0.1:8080"

    @Option(
        help: ArgumentHelp(
            "The SQLite database (default: /var/lib/graced/graced.sqlite, or a temporary one with --simulate).",
            valueName: "path"))
    var db: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Option(
        name: .customLong("gpu-memory"),
        help: ArgumentHelp(
            "Firmware device memory of an nvgrace GPU (ACPI _DSD nvidia,gpu-mem-base-pa and -size, which sysfs does not show). Repeatable.",
            valueName: "bdf=base,size"))
    var gpuMemory: [String] = []

    @Option(help: ArgumentHelp("Seconds between inventory rescans (0 turns them off).", valueName: "seconds"))
    var rescanInterval: Double = 5

    @Option(
        name: .customLong("manage-class"),
        help: ArgumentHelp(
            "Also manage functions of this PCI class prefix (0x01: a base class, 0x0108: with subclass, 0x010802: with programming interface). Repeatable; display controllers (0x03) are always managed.",
            valueName: "hex"))
    var manageClasses: [String] = []

    @Option(
        name: .customLong("manage-bdf"),
        help: ArgumentHelp(
            "Also manage this PCI function (a GPU's companion function, an NVMe drive passed through beside it). Repeatable.",
            valueName: "bdf"))
    var manageBDFs: [String] = []

    @Option(help: ArgumentHelp("Job worker threads (default: max(2, cores)).", valueName: "n"))
    var workers: Int?

    mutating func validate() throws {
        for text in manageClasses where ClassPrefix(text) == nil {
            throw ValidationError(
                "--manage-class takes a hex class prefix of 2, 4 or 6 digits, e.g. 0x0108 (got \(text))")
        }
        for text in manageBDFs where BDF(text) == nil {
            throw ValidationError(
                "--manage-bdf takes a PCI address DDDD:BB:DD.F, e.g. 0000:01:00.0 (got \(text))")
        }
        if let workers, !(1...256).contains(workers) {
            throw ValidationError("--workers takes a number from 1 to 256")
        }
        guard ListenAddress(listen) != nil else {
            throw ValidationError("--listen takes HOST:PORT with an IPv4 host, e.g. 127.0.0.1:8080")
        }
        for entry in gpuMemory where FirmwareMemoryArgument(entry) == nil {
            throw ValidationError(
                "--gpu-memory takes BDF=BASE,SIZE with hex or decimal numbers, e.g. 0009:01:00.0=0x400000000000,0x1800000000 (got \(entry))"
            )
        }
    }

    func run() throws {
        // Before any thread exists, so that every thread inherits the mask.
        blockTerminationSignals()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
        var logger = Logger(label: "graced")
        logger.logLevel = logLevel

        let selection = DeviceSelection(
            classPrefixes: [.displayControllers] + manageClasses.compactMap { ClassPrefix($0) },
            addresses: Set(manageBDFs.compactMap { BDF($0) }))
        let host: ServiceHost
        var simulatedHost: SimulatedHost?
        if simulate {
            let simulated = try SimulatedHost.createTemporary(prefix: "graced-sim")
            simulatedHost = simulated
            host = ServiceHost(
                root: simulated.root, writer: simulated.kernel,
                firmwareMemory: FirmwareMemoryTable(
                    source: "simulator",
                    entries: simulated.firmwareMemory),
                selection: selection, procRoot: simulated.procRoot,
                modulesAliasPath: simulated.modulesAliasPath,
                simulator: simulated.kernel)
            logger.info("simulated host in \(simulated.root.path)")
        } else {
            let root = SysfsRoot(path: sysfs)
            var entries: [BDF: FirmwareMemory] = [:]
            for argument in gpuMemory.compactMap(FirmwareMemoryArgument.init) {
                entries[argument.bdf] = argument.entry
            }
            host = ServiceHost(
                root: root, writer: LinuxKernelWriter(root: root),
                firmwareMemory: FirmwareMemoryTable(source: "host-config", entries: entries),
                selection: selection, modulesAliasPath: runningKernelModulesAlias(), simulator: nil)
        }
        defer {
            try? simulatedHost?.removeFiles()
        }

        let databasePath =
            db ?? (simulatedHost.map { $0.folder + "/graced.sqlite" } ?? "/var/lib/graced/graced.sqlite")
        try makeParentFolder(of: databasePath)
        let store = try GraceStore(path: databasePath)
        logger.info("database \(databasePath)")

        let application = try Application(
            host: host, store: store, listen: ListenAddress(listen)!,
            rescanIntervalSeconds: rescanInterval,
            jobs: workers.map { JobEngine.Configuration(workers: $0) } ?? JobEngine.Configuration(),
            logger: logger)
        try application.start()
        logger.notice(
            "graced listening on http://\(listen) with \(application.inventory.snapshot.gpus.count) GPUs")

        let signal = waitForTerminationSignal()
        logger.notice("signal \(signal): shutting down")
        application.stop()
    }
}

/// SIGTERM and SIGINT, blocked in every thread (the mask is inherited by threads created later) so
/// that only `waitForTerminationSignal` receives them.
private func terminationSignals() -> sigset_t {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGTERM)
    sigaddset(&signals, SIGINT)
    return signals
}

private func blockTerminationSignals() {
    // A signal ignored at exec (SIGINT in a shell's background job) would be discarded, never waited for.
    signal(SIGTERM, SIG_DFL)
    signal(SIGINT, SIG_DFL)
    var signals = terminationSignals()
    pthread_sigmask(SIG_BLOCK, &signals, nil)
}

/// Blocks the calling thread until SIGTERM or SIGINT arrives; returns its number.
@discardableResult
private func waitForTerminationSignal() -> Int32 {
    var signals = terminationSignals()
    var received: Int32 = 0
    while sigwait(&signals, &received) != 0 {}
    return received
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `/lib/modules/<release>/modules.alias` of the running kernel, where VFIO variant drivers are found.
private func runningKernelModulesAlias() -> String? {
    var names = utsname()
    guard uname(&names) == 0 else { return nil }
    let release = withUnsafeBytes(of: names.release) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    return "/lib/modules/\(release)/modules.alias"
}

struct FolderError: Error, CustomStringConvertible {
    let path: String
    let errno: Int32
    var description: String { "cannot create \(path) for the database (errno \(errno)); pass --db PATH" }
}

/// Creates the database's folder (private to root) when it does not exist yet.
private func makeParentFolder(of path: String) throws {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
    var current = ""
    for component in path[..<slash].split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o700) != 0 && errno != EEXIST { throw FolderError(path: current, errno: errno) }
    }
}

/// `BDF=BASE,SIZE` from the command line.
struct FirmwareMemoryArgument {
    var bdf: BDF
    var entry: FirmwareMemory

    init?(_ text: String) {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let bdf = BDF(parts[0]) else { return nil }
        let numbers = parts[1].split(separator: ",")
        guard numbers.count == 2, let base = parseNumber(numbers[0]), let size = parseNumber(numbers[1])
        else {
            return nil
        }
        self.bdf = bdf
        entry = .init(physicalBase: base, length: size)
    }
}

private func parseNumber(_ text: Substring) -> UInt64? {
    text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
}
