import Passthrough

/// What the store keeps per GPU and compares between snapshots: the BARs and the device memory.
/// A change between two snapshots is drift, the classic sign of a bad reset.
struct RecordedLayout: Codable, Hashable, Sendable {
    var bars: [BAR]
    var memory: DeviceMemory?

    init(_ gpu: GPUDevice) {
        bars = gpu.bars
        memory = gpu.memory
    }

    /// A one-line account of what changed from `previous`, for the drift record.
    func changes(from previous: RecordedLayout) -> String {
        var lines: [String] = []
        let before = Dictionary(previous.bars.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(bars.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        for index in Set(before.keys).union(after.keys).sorted() {
            switch (before[index], after[index]) {
            case (let old?, nil): lines.append("BAR \(index) gone (was \(Self.describe(old)))")
            case (nil, let new?): lines.append("BAR \(index) appeared (\(Self.describe(new)))")
            case (let old?, let new?) where old != new:
                lines.append("BAR \(index) \(Self.describe(old)) -> \(Self.describe(new))")
            default: break
            }
        }
        if previous.memory != memory {
            lines.append(
                "device memory \(Self.describe(previous.memory)) -> \(Self.describe(memory))")
        }
        return lines.isEmpty ? "layout encoding changed" : lines.joined(separator: "; ")
    }

    private static func describe(_ bar: BAR) -> String {
        "start 0x\(hex(bar.start, width: 1)) size 0x\(hex(bar.size, width: 1))"
            + (bar.is64Bit ? " 64-bit" : " 32-bit") + (bar.prefetchable ? " prefetchable" : "")
    }

    private static func describe(_ memory: DeviceMemory?) -> String {
        guard let memory else { return "none" }
        return "base 0x\(hex(memory.physicalBase, width: 1)) length 0x\(hex(memory.length, width: 1))"
    }
}
