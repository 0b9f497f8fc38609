/// Percentiles of a sample, nearest-rank.
struct Statistics {
    let sorted: [Double]

    init(_ values: [Double]) {
        sorted = values.sorted()
    }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }

    func line(unit: String) -> String {
        func format(_ value: Double) -> String {
            let scaled = (value * 100).rounded() / 100
            return String(scaled)
        }
        return "n=\(sorted.count) p50=\(format(percentile(50)))\(unit) p90=\(format(percentile(90)))\(unit) "
            + "p99=\(format(percentile(99)))\(unit) max=\(format(sorted.last ?? .nan))\(unit)"
    }
}
