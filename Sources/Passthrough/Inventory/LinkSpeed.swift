/// PCI Express link speeds and widths as sysfs and the Link registers report them, in GT/s and lanes.
public enum LinkSpeed {
    /// GT/s of a Link Status / Link Capabilities speed code: 1 = 2.5 up to 6 = 64; nil for codes the
    /// spec does not define (0, 7 and up), which a device in trouble can report.
    public static func gigatransfersPerSecond(code: UInt8) -> Double? {
        switch code {
        case 1: 2.5
        case 2: 5.0
        case 3: 8.0
        case 4: 16.0
        case 5: 32.0
        case 6: 64.0
        default: nil
        }
    }

    /// GT/s from `current_link_speed` / `max_link_speed`.
    ///
    /// Current kernels print "16.0 GT/s PCIe"; kernels before about 5.6 printed "8 GT/s" and
    /// "2.5 GT/s". Both are accepted, with or without the newline. "Unknown" (link down, or a speed the
    /// kernel cannot name) and anything else unreadable give nil.
    public static func parse(_ text: some StringProtocol) -> Double? {
        let fields = sysfsFields(text)
        guard fields.count >= 2, fields[1] == "GT/s", let value = Double(fields[0]), value.isFinite,
            value > 0
        else { return nil }
        return value
    }

    /// Lanes from `current_link_width` / `max_link_width` (`%u`); nil when not a plain number.
    /// 0 is kept: a link that is down reports width 0.
    public static func parseWidth(_ text: some StringProtocol) -> Int? {
        let trimmed = sysfsFields(text)
        guard trimmed.count == 1, trimmed[0].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(trimmed[0])
    }
}

extension PCILink {
    /// The link as the four sysfs attributes describe it; pass nil for an attribute that is absent
    /// (devices without a PCI Express capability have none of them).
    public init(
        sysfsCurrentSpeed: String?, currentWidth: String?, maxSpeed: String?, maxWidth: String?
    ) {
        self.init(
            currentSpeed: sysfsCurrentSpeed.flatMap(LinkSpeed.parse),
            currentWidth: currentWidth.flatMap(LinkSpeed.parseWidth),
            maxSpeed: maxSpeed.flatMap(LinkSpeed.parse),
            maxWidth: maxWidth.flatMap(LinkSpeed.parseWidth))
    }
}
