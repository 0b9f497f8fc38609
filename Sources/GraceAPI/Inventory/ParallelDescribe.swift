import Dispatch
import GraceHTTP
import Passthrough
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Describes a scan's functions on one thread per core, each thread a contiguous share, the caller's
/// thread taking the first: a function's description is a dozen small file reads, the kernel's path
/// walks and copies are CPU work, and a first start at 4096 functions spent most of its time here
/// with one core idle. Below `threshold` functions one thread does it all (a thread costs more than
/// it saves). The result is in the order of `functions`, as `HostInventory.describe` gives it.
enum ParallelDescribe {
    static let threshold = 256

    static func describe(_ functions: [PCIFunction], with inventory: HostInventory) -> [GPUDevice] {
        let cores = max(1, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        let threads = min(cores, functions.count / (threshold / 2))
        guard threads > 1 else { return inventory.describe(functions) }
        let share = (functions.count + threads - 1) / threads
        let shares = stride(from: 0, to: functions.count, by: share).map {
            Array(functions[$0..<min($0 + share, functions.count)])
        }
        let described = Mutex([[GPUDevice]](repeating: [], count: shares.count))
        let done = DispatchSemaphore(value: 0)
        for index in shares.indices.dropFirst() {
            let part = shares[index]
            startDedicatedThread {
                let gpus = inventory.describe(part)
                described.withLock { $0[index] = gpus }
                done.signal()
            }
        }
        let first = inventory.describe(shares[0])
        for _ in shares.indices.dropFirst() { done.wait() }
        return described.withLock { parts in
            parts[0] = first
            return parts.flatMap { $0 }
        }
    }
}
