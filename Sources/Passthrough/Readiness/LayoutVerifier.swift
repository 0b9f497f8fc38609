/// Compares a device's BARs after a reset with the ones recorded before it.
///
/// Kept apart from readiness on purpose: a BAR that moved or shrank is not "not ready yet", it is a
/// device that came back different, which the engine verifies once readiness is reached and treats
/// as drift or failure, never as a reason to keep polling.
public enum LayoutVerifier {
    /// Human-readable differences, in BAR index order; empty when the layouts match.
    public static func differences(expected: [BAR], actual: [BAR]) -> [String] {
        let before = Dictionary(expected.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(actual.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        var result: [String] = []
        for index in Set(before.keys).union(after.keys).sorted() {
            switch (before[index], after[index]) {
            case (let want?, let have?):
                if have.size != want.size {
                    result.append("BAR \(index) size \(size(have.size)), expected \(size(want.size))")
                }
                if have.start != want.start {
                    result.append(
                        "BAR \(index) start \(address(have.start)), expected \(address(want.start))")
                }
                if have.is64Bit != want.is64Bit {
                    result.append("BAR \(index) is \(bits(have)), expected \(bits(want))")
                }
                if have.prefetchable != want.prefetchable {
                    result.append("BAR \(index) is \(prefetch(have)), expected \(prefetch(want))")
                }
            case (let want?, nil):
                result.append("BAR \(index) missing, expected \(size(want.size)) at \(address(want.start))")
            case (nil, let have?):
                result.append("BAR \(index) appeared: \(size(have.size)) at \(address(have.start))")
            case (nil, nil):
                break
            }
        }
        return result
    }

    /// Reads the device's `resource` file and compares; an unreadable or malformed file is itself
    /// the one difference reported.
    public static func verify(bdf: BDF, root: SysfsRoot, expected: [BAR]) -> [String] {
        let text: String
        do {
            text = try root.readString(root.device(bdf) + "/resource")
        } catch {
            return ["resource unreadable: \(error.name)"]
        }
        do {
            return differences(expected: expected, actual: try ResourceFile.bars(text))
        } catch {
            return ["resource unparsable: \(error)"]
        }
    }

    /// "16 MiB (0x1000000)": the unit for people, the hex for matching against lspci.
    static func size(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while unit < units.count - 1 && value >= 1024 && value % 1024 == 0 {
            value /= 1024
            unit += 1
        }
        return "\(value) \(units[unit]) (0x\(String(bytes, radix: 16)))"
    }

    static func address(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
    static func bits(_ bar: BAR) -> String { bar.is64Bit ? "64-bit" : "32-bit" }
    static func prefetch(_ bar: BAR) -> String { bar.prefetchable ? "prefetchable" : "non-prefetchable" }
}
