import ArgumentParser
import GraceAPI
import GraceHTTP
import GraceSimulation
import Logging
import Passthrough
import PassthroughSimulator
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

    @Option(
        help: ArgumentHelp(
            "With --simulate: replay a host recorded by `graced capture` instead of the demo host.",
            valueName: "file"))
    var fromCapture: String?

    @Option(
        name: .customLong("simulate-config-dword-us"),
        help: ArgumentHelp(
            "With --simulate: what each config-space dword read costs, as on a KVM guest (20-36 µs), so that benchmarks feel it (default 0).",
            valueName: "µs"))
    var simulateConfigDwordMicroseconds = 0

    @Option(help: ArgumentHelp("The sysfs root to read and write.", valueName: "root"))
    var sysfs = "/sys"

    @Option(
        help: ArgumentHelp(
            "Where to listen: unix:PATH, or HOST:PORT with an IPv4 or [IPv6] literal. Repeatable. Default: unix:/run/graced/graced.sock.",
            valueName: "address"))
    var listen: [String] = []

    @Option(
        help: ArgumentHelp(
            "Group of the Unix socket (mode 0660); its members are operators (see --socket-group-role). Default: graced, when that group exists.",
            valueName: "name"))
    var socketGroup: String?

    @Option(help: ArgumentHelp("Role of the socket group's members.", valueName: "role"))
    var socketGroupRole: Role = .operator

    @Option(
        help: ArgumentHelp(
            "Bearer tokens (made with `graced token create`); read at start and on SIGHUP. TCP needs it unless --tls-client-ca or --no-auth.",
            valueName: "file"))
    var tokens = "/etc/graced/tokens"

    @Option(
        help: ArgumentHelp(
            "What to do when a function is not on its desired driver (GET /bindings): apply (submit a reconcile job) or report (log it only).",
            valueName: "mode"))
    var reconcile: BindingReconciler.Mode = .apply

    @Flag(
        help:
            "Serve loopback TCP listeners without authentication (every caller is admin). Refused for any other address; logged at every start."
    )
    var noAuth = false

    @Option(help: ArgumentHelp("PEM certificate: TCP listeners speak TLS.", valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("PEM private key for --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "PEM CAs whose client certificates identify callers (mutual TLS); the subject is the identity.",
            valueName: "file"))
    var tlsClientCA: String?

    @Option(
        help: ArgumentHelp(
            "PEM CRLs of the --tls-client-ca CAs: a client certificate they revoke identifies no one.",
            valueName: "file"))
    var tlsClientCrl: String?

    @Option(help: ArgumentHelp("Role of a caller identified by a client certificate.", valueName: "role"))
    var tlsClientRole: Role = .operator

    @Option(
        help: ArgumentHelp(
            "A web origin allowed to send requests (e.g. https://dash.example); any other Origin is refused. Repeatable.",
            valueName: "origin"))
    var allowOrigin: [String] = []

    @Option(
        help: ArgumentHelp(
            "A host name accepted in the Host header on TCP besides the listening address. Repeatable.",
            valueName: "name"))
    var allowHost: [String] = []

    @Option(help: ArgumentHelp("Connections at once, per listener.", valueName: "n"))
    var maxConnections = 256

    @Option(
        help: ArgumentHelp(
            "Connections at once of one client on TCP: by address group (loopback is one, IPv6 by /64) until authenticated, then by identity.",
            valueName: "n"))
    var maxConnectionsPerClient = 32

    @Option(help: ArgumentHelp("Largest request body.", valueName: "bytes"))
    var maxBodyBytes = 65536

    @Option(
        help: ArgumentHelp(
            "Seconds a connection has to deliver a request's headers (slow clients are cut off).",
            valueName: "seconds"))
    var headerTimeout: Double = 10

    @Option(
        help: ArgumentHelp("Changing requests per identity per minute (0: no limit).", valueName: "n"))
    var mutationsPerMinute = 60

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

    @Option(
        help: ArgumentHelp(
            "Seconds between full inventory rescans (0 turns them off). Default: 300 while the kernel's device events (uevents) keep the inventory current, 5 without them.",
            valueName: "seconds"))
    var rescanInterval: Double?

    @Option(
        help: ArgumentHelp(
            "Seconds between looks of the health watch at idle GPUs (power state, a few config dwords, link, AER; 0 turns it off).",
            valueName: "seconds"))
    var healthInterval: Double = 5

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

    @Option(
        name: .customLong("pci-ids"),
        help: ArgumentHelp(
            "The pci.ids file libpci names devices from (default: /usr/share/misc/pci.ids, updated by update-pciids). NVIDIA data-centre GPUs it lacks are named from graced's own table.",
            valueName: "path"))
    var pciIDs: String?

    @Option(help: ArgumentHelp("Hours the event log (GET /events) keeps an event.", valueName: "hours"))
    var eventsMaxAgeHours: Double = 24

    @Option(help: ArgumentHelp("Events the log keeps at most (the oldest go first).", valueName: "n"))
    var eventsMaxRows = 100_000

    @Option(help: ArgumentHelp("Days the audit trail (GET /audit) keeps a line.", valueName: "days"))
    var auditMaxAgeDays: Double = 90

    @Option(help: ArgumentHelp("Lines the audit trail keeps at most (the oldest go first).", valueName: "n"))
    var auditMaxRows = 1_000_000

    @Option(
        help: ArgumentHelp(
            "Days a finished job (GET /jobs) is kept; running jobs, and those a binding or a reboot verdict names, stay.",
            valueName: "days"))
    var jobsMaxAgeDays: Double = 90

    @Option(help: ArgumentHelp("Jobs kept at most (the oldest finished ones go first).", valueName: "n"))
    var jobsMaxRows = 100_000

    @Option(help: ArgumentHelp("Seconds between enforcements of the retentions above.", valueName: "seconds"))
    var pruneInterval: Double = 60

    /// The retentions as the application takes them.
    var retention: (events: EventHub.Configuration, tables: Application.Retention) {
        var events = EventHub.Configuration()
        events.retentionMs = Int64(eventsMaxAgeHours * 3_600_000)
        events.retentionCount = eventsMaxRows
        let tables = Application.Retention(
            auditMs: Int64(auditMaxAgeDays * 86_400_000), auditRows: auditMaxRows,
            jobsMs: Int64(jobsMaxAgeDays * 86_400_000), jobsRows: jobsMaxRows, intervalSeconds: pruneInterval)
        return (events, tables)
    }

    mutating func validate() throws {
        for (flag, value) in [
            ("--events-max-age-hours", eventsMaxAgeHours), ("--audit-max-age-days", auditMaxAgeDays),
            ("--jobs-max-age-days", jobsMaxAgeDays),
        ] where !(value > 0 && value <= 36_500) {
            throw ValidationError("\(flag) takes a positive number (fractions allowed), at most 36500")
        }
        for (flag, value) in [
            ("--events-max-rows", eventsMaxRows), ("--audit-max-rows", auditMaxRows),
            ("--jobs-max-rows", jobsMaxRows),
        ] where !(1...100_000_000).contains(value) {
            throw ValidationError("\(flag) takes a number from 1 to 100000000")
        }
        guard (1...86_400).contains(pruneInterval) else {
            throw ValidationError("--prune-interval takes seconds from 1 to 86400")
        }
        if simulateConfigDwordMicroseconds != 0 && !simulate {
            throw ValidationError(
                "--simulate-config-dword-us prices the simulated host's reads: add --simulate")
        }
        if simulateConfigDwordMicroseconds < 0 || simulateConfigDwordMicroseconds > 1_000_000 {
            throw ValidationError("--simulate-config-dword-us takes 0 to 1000000 microseconds")
        }
        if fromCapture != nil && !simulate {
            throw ValidationError(
                "--from-capture replays a capture on the simulated kernel and never touches this host: add --simulate"
            )
        }
        for text in manageClasses where ClassPrefix(text) == nil {
            throw ValidationError(
                "--manage-class takes a hex class prefix of 2, 4 or 6 digits, e.g. 0x0108 (got \(text))")
        }
        for text in manageBDFs where BDF(text) == nil {
            throw ValidationError(
                "--manage-bdf takes a PCI address DDDD:BB:DD.F, e.g. 0000:01:00.0 (got \(text))")
        }
        if !(healthInterval == 0 || (0.1...3600).contains(healthInterval)) {
            throw ValidationError(
                "--health-interval takes seconds from 0.1 to 3600, or 0 to turn the watch off")
        }
        if let workers, !(1...256).contains(workers) {
            throw ValidationError("--workers takes a number from 1 to 256")
        }
        for text in listen where ListenAddress(text) == nil {
            throw ValidationError(
                "--listen takes unix:/ABSOLUTE/PATH or HOST:PORT with an IPv4 or [IPv6] literal, e.g. unix:/run/graced/graced.sock or 127.0.0.1:8443 (got \(text))"
            )
        }
        if noAuth, let open = listenAddresses.first(where: { !$0.isUnix && !$0.isLoopback }) {
            throw ValidationError(
                "--no-auth is only for loopback addresses (127.0.0.1, [::1]); \(open) is reachable from other hosts: create a token with `graced token create` instead"
            )
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        if tlsClientCrl != nil && tlsClientCA == nil {
            throw ValidationError(
                "--tls-client-crl revokes certificates of the --tls-client-ca CAs: add --tls-client-ca")
        }
        if tlsClientCA != nil && tlsCert == nil {
            throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key")
        }
        if tlsCert != nil && !listenAddresses.contains(where: { !$0.isUnix }) {
            throw ValidationError("--tls-cert applies to TCP listeners: add --listen HOST:PORT")
        }
        guard (1...100_000).contains(maxConnections) else {
            throw ValidationError("--max-connections takes a number from 1 to 100000")
        }
        guard (0...100_000).contains(maxConnectionsPerClient) else {
            throw ValidationError("--max-connections-per-client takes a number from 0 (no limit) to 100000")
        }
        guard (1...(64 << 20)).contains(maxBodyBytes) else {
            throw ValidationError("--max-body-bytes takes a number from 1 to 67108864")
        }
        guard headerTimeout > 0 && headerTimeout <= 3600 else {
            throw ValidationError("--header-timeout takes seconds, more than 0 and at most 3600")
        }
        guard (0...100_000).contains(mutationsPerMinute) else {
            throw ValidationError("--mutations-per-minute takes a number from 0 (no limit) to 100000")
        }
        if let pciIDs {
            do {
                try PCIIDsFile.check(pciIDs)
            } catch {
                throw ValidationError("--pci-ids: \(error)")
            }
        }
        for entry in gpuMemory where FirmwareMemoryArgument(entry) == nil {
            throw ValidationError(
                "--gpu-memory takes BDF=BASE,SIZE with hex or decimal numbers, e.g. 0009:01:00.0=0x400000000000,0x1800000000 (got \(entry))"
            )
        }
    }

    /// The safety-net rescan while uevents keep the inventory current: a full scan of 4096
    /// functions costs about a second of CPU (see bench/RESULTS.md), a tenth of a percent every 5 min.
    static let rescanWithEventsSeconds: Double = 300

    var listenAddresses: [ListenAddress] {
        listen.isEmpty ? [.defaultSocket] : listen.compactMap(ListenAddress.init)
    }

    func run() throws {
        // Files graced creates (database, WAL, token files) are private to root; the socket's mode
        // is set explicitly.
        umask(0o077)
        // Before any thread exists: two arenas rather than up to 8 per core, each keeping its own
        // freed memory, and large blocks always mapped apart (resident memory at 4096 GPUs,
        // bench/RESULTS.md section 3).
        HeapTrim.configure(arenas: 2, mmapAbove: 256 << 10)
        // Before any thread exists, so that every thread inherits the mask.
        blockTerminationSignals()
        raiseOpenFileLimit()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
        var logger = Logger(label: "graced")
        logger.logLevel = logLevel
        if let pciIDs {
            PCIScanner.defaultIDsPath = pciIDs
            logger.info("device names from \(pciIDs)")
        }

        let selection = DeviceSelection(
            classPrefixes: [.displayControllers] + manageClasses.compactMap { ClassPrefix($0) },
            addresses: Set(manageBDFs.compactMap { BDF($0) }))
        let host: ServiceHost
        var simulatedHost: SimulatedHost?
        // Uevents describe the real kernel's devices: a fixture tree given with --sysfs gets none.
        var deviceEvents: (any DeviceEventSource)?
        if simulate {
            let simulated =
                try fromCapture.map { path in
                    try SimulatedHost.createTemporary(prefix: "graced-sim", from: try readCaptureFile(path))
                } ?? SimulatedHost.createTemporary(prefix: "graced-sim")
            simulatedHost = simulated
            simulated.configReads.setDwordCost(microseconds: simulateConfigDwordMicroseconds)
            host = .simulated(simulated, selection: selection)
            deviceEvents = simulated.kernel.deviceEvents.source()
            if let fromCapture { logger.info("replaying the host captured in \(fromCapture)") }
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
                selection: selection, modulesAliasPath: runningKernelModulesAlias())
            if root.path == "/sys" { deviceEvents = NetlinkUeventSource() }
        }
        defer {
            try? simulatedHost?.removeFiles()
        }

        let databasePath =
            db ?? (simulatedHost.map { $0.folder + "/graced.sqlite" } ?? "/var/lib/graced/graced.sqlite")
        try makeParentFolder(of: databasePath)
        let store = try GraceStore(path: databasePath)
        makePrivate(databasePath)
        logger.info("database \(databasePath)")

        let access = try AccessSetup(self, logger: logger)
        let application = try Application(
            host: host, store: store, server: access.serverConfiguration,
            rescanIntervalSeconds: rescanInterval
                ?? (deviceEvents == nil ? Application.pollingRescanSeconds : Self.rescanWithEventsSeconds),
            healthIntervalSeconds: healthInterval, deviceEvents: deviceEvents,
            jobs: workers.map { JobEngine.Configuration(workers: $0) } ?? JobEngine.Configuration(),
            events: retention.events, reconcile: reconcile, retention: retention.tables, logger: logger)
        try application.start()
        let addresses = application.listening.map(\.description).joined(separator: ", ")
        logger.notice(
            "graced listening on \(addresses) with \(application.inventory.snapshot.gpus.count) GPUs")

        var stopping = ContinuousClock.now
        while true {
            let signal = waitForSignal()
            guard signal == SIGHUP else {
                stopping = .now
                logger.notice("signal \(signal): shutting down")
                break
            }
            access.reloadTokens(into: application.authenticator)
        }
        application.stop()
        // Here rather than in the `defer` alone, so that its time is in the log: the tree is
        // thousands of files on a captured or large simulated host.
        if let simulatedHost {
            let removing = ContinuousClock.now
            try? simulatedHost.removeFiles()
            logger.debug(
                "shutdown: simulated host removed in \(Application.milliseconds(removing.duration(to: .now))) ms"
            )
        }
        logger.notice(
            "graced stopped cleanly in \(Application.milliseconds(stopping.duration(to: .now))) ms")
    }
}

/// SIGTERM and SIGINT (stop) and SIGHUP (reload the tokens), blocked in every thread (the mask is
/// inherited by threads created later) so that only `waitForSignal` receives them.
private func handledSignals() -> sigset_t {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGTERM)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGHUP)
    return signals
}

private func blockTerminationSignals() {
    // A signal ignored at exec (SIGINT in a shell's background job) would be discarded, never waited for.
    signal(SIGTERM, SIG_DFL)
    signal(SIGINT, SIG_DFL)
    signal(SIGHUP, SIG_DFL)
    var signals = handledSignals()
    pthread_sigmask(SIG_BLOCK, &signals, nil)
}

/// Blocks the calling thread until SIGTERM, SIGINT or SIGHUP arrives; returns its number.
private func waitForSignal() -> Int32 {
    var signals = handledSignals()
    var received: Int32 = 0
    while sigwait(&signals, &received) != 0 {}
    return received
}

/// The soft open-file limit up to the hard one: the connection limit is derived from it.
private func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else {
        return
    }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// The database and its WAL files readable by root alone, even when made by an older graced.
private func makePrivate(_ databasePath: String) {
    for suffix in ["", "-wal", "-shm"] {
        chmod(databasePath + suffix, 0o600)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension BindingReconciler.Mode: ExpressibleByArgument {}

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
    // Digits only: the standard library's parsers also take a sign.
    guard let first = text.utf8.first, first != UInt8(ascii: "+"), first != UInt8(ascii: "-") else {
        return nil
    }
    return text.hasPrefix("0x") ? HexNumber.parse(text) : UInt64(text)
}
