import Passthrough
import Synchronization

/// Devices with a kernel write that outlived its job's deadline: the kernel still holds the device,
/// so nothing else is written to it until that write returns.
final class WedgedDevices: Sendable {
    private let devices = Mutex<Set<BDF>>([])

    func insert(_ device: BDF) { devices.withLock { _ = $0.insert(device) } }
    func remove(_ device: BDF) { devices.withLock { _ = $0.remove(device) } }
    func contains(_ device: BDF) -> Bool { devices.withLock { $0.contains(device) } }
    var all: Set<BDF> { devices.withLock { $0 } }
}
