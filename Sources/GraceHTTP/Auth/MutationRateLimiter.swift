import Synchronization

/// At most `perMinute` changing requests per identity per minute, as a token bucket: a burst of
/// `perMinute` at once, then one more every 60/perMinute seconds.
package final class MutationRateLimiter: Sendable {
    let perMinute: Int
    private let clock = ContinuousClock()

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// `perMinute` 0 turns the limit off.
    init(perMinute: Int) {
        self.perMinute = perMinute
    }

    /// nil when the request may go ahead (and is counted), else the seconds to wait.
    func admit(_ identity: String) -> Int? {
        guard perMinute > 0 else { return nil }
        let now = clock.now
        let rate = Double(perMinute) / 60
        return buckets.withLock { buckets in
            var bucket = buckets[identity] ?? Bucket(tokens: Double(perMinute), updated: now)
            let elapsed = bucket.updated.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(Double(perMinute), bucket.tokens + seconds * rate)
            bucket.updated = now
            defer {
                buckets[identity] = bucket
                if buckets.count > 10_000 {
                    Self.forgetFull(&buckets, perMinute: perMinute, now: now, rate: rate)
                }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }

    /// Identities whose bucket has refilled carry no state worth keeping.
    private static func forgetFull(
        _ buckets: inout [String: Bucket], perMinute: Int, now: ContinuousClock.Instant, rate: Double
    ) {
        buckets = buckets.filter { _, bucket in
            let elapsed = bucket.updated.duration(to: now).components.seconds
            return bucket.tokens + Double(elapsed) * rate < Double(perMinute)
        }
    }
}
