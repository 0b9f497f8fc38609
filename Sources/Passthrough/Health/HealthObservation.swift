/// One cheap look at an idle GPU through the seam: its power state, the first 256 bytes of config
/// space, the AER counters, and what its upstream port can do.
///
/// It never wakes the device: the kernel resumes a function in D3cold to serve a config read (and
/// only then: a D3hot function answers config requests as it is), so config space is not read when
/// `power_state` says D3cold. No BAR is touched (they read all-ones in D3hot anyway).
public struct HealthObservation: Hashable, Sendable {
    public var power: PowerState
    /// Nil when not read (D3cold, or the file vanished); empty or short when the read failed.
    public var config: ConfigSpace?
    /// `TOTAL_ERR_*` of `aer_dev_fatal`, `aer_dev_nonfatal`, `aer_dev_correctable`, where sysfs has them.
    public var aer: [HealthReason: UInt64]
    /// Maximum speed (GT/s) and width of the upstream port, which bound what the link can train to.
    public var upstreamMaxSpeed: Double?
    public var upstreamMaxWidth: Int?

    public init(
        power: PowerState, config: ConfigSpace?, aer: [HealthReason: UInt64] = [:],
        upstreamMaxSpeed: Double? = nil, upstreamMaxWidth: Int? = nil
    ) {
        self.power = power
        self.config = config
        self.aer = aer
        self.upstreamMaxSpeed = upstreamMaxSpeed
        self.upstreamMaxWidth = upstreamMaxWidth
    }

    /// The AER files and the reason their rise reports.
    static let aerFiles: [(file: String, reason: HealthReason)] = [
        ("aer_dev_fatal", .aerFatal), ("aer_dev_nonfatal", .aerNonfatal),
        ("aer_dev_correctable", .aerCorrectable),
    ]

    /// Bytes of config space read: the header and the capability list, where the PCI Express
    /// capability with the link registers lives.
    static let configBytes = 256

    /// The function's files are read through its folder held open (one name looked up per file, not
    /// the whole path): the watch reads them for every GPU every few seconds.
    public static func read(bdf: BDF, upstream: BDF?, root: SysfsRoot) -> HealthObservation {
        root.withFolder(root.device(bdf)) { folder in
            let power = PowerState.read(in: folder)
            var config: ConfigSpace?
            if !power.isD3cold {
                config = (try? folder.readBytes("config", offset: 0, count: configBytes)).map(
                    ConfigSpace.init)
            }
            var aer: [HealthReason: UInt64] = [:]
            for (file, reason) in aerFiles {
                if let text = folder.readAttribute(file), let total = aerTotal(text) {
                    aer[reason] = total
                }
            }
            let upstreamFolder = upstream.map(root.device)
            return HealthObservation(
                power: power, config: config, aer: aer,
                upstreamMaxSpeed: upstreamFolder.flatMap { root.readAttribute($0 + "/max_link_speed") }
                    .flatMap(LinkSpeed.parse),
                upstreamMaxWidth: upstreamFolder.flatMap { root.readAttribute($0 + "/max_link_width") }
                    .flatMap(LinkSpeed.parseWidth))
        }
    }

    /// The `TOTAL_ERR_COR` / `TOTAL_ERR_FATAL` / `TOTAL_ERR_NONFATAL` line of an AER stats file
    /// (one `NAME count` per line).
    static func aerTotal(_ text: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let fields = sysfsFields(line)
            if fields.count == 2, fields[0].hasPrefix("TOTAL_ERR_"), let value = UInt64(fields[1]) {
                return value
            }
        }
        return nil
    }
}
