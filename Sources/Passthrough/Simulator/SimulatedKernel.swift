import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A `KernelWriter` that gives each write the Linux kernel's meaning on a simulated sysfs tree.
///
/// Readers keep reading files: binding moves `driver` links, a reset makes the device's registers read
/// "not ready" and a timer makes them read "ready" again later, exactly where the real kernel and
/// device would show it (CXL Range 1 Size Low in `config`, nvgrace's BAR0 words in `resource0`, or an
/// all-ones `config`). Nothing above the seam can tell it from the real one.
///
/// One lock guards the state and the tree's files; it is never held while sleeping (an injected hang
/// blocks only the writer, as a slow kernel write would).
public final class SimulatedKernel: KernelWriter, Sendable {
    /// One write and what the kernel answered; `error` is nil for success.
    public struct WriteRecord: Sendable, Hashable {
        public var write: SysfsWrite
        public var error: KernelError?
    }

    /// The kernel's `pci_reset_fn_methods[]` names.
    public static let resetMethodNames: Set<String> = [
        "device_specific", "acpi", "flr", "af_flr", "pm", "bus", "cxl_bus",
    ]

    struct Device {
        /// `driver` and `driverOverride` say what is bound and set now.
        var function: SimulatedFunction
        var enabledResetMethods: [String]
        /// The config space when the device is ready.
        var config: [UInt8]
        var layout: ConfigSpaceBuilder.Layout
        var ready = true
        /// Which reset the pending readiness timers belong to; a newer reset or a removal voids them.
        var generation = 0
    }

    struct State {
        var devices: [BDF: Device] = [:]
        var removed: Set<BDF> = []
        var faults: [BDF: SimulatorFaults] = [:]
        var log: [WriteRecord] = []
        var nextGeneration = 1
    }

    public let root: SysfsRoot
    let tree: SysfsTreeBuilder
    private let state: Mutex<State>

    /// A kernel over a tree that `tree.build()` has written.
    public init(tree: SysfsTreeBuilder) {
        root = tree.root
        self.tree = tree
        var initial = State()
        for function in tree.functions.values { initial.devices[function.bdf] = Self.device(function, tree) }
        state = Mutex(initial)
    }

    private static func device(_ function: SimulatedFunction, _ tree: SysfsTreeBuilder) -> Device {
        let config = tree.configSpace(for: function)
        return Device(
            function: function, enabledResetMethods: function.resetMethods, config: config.bytes,
            layout: config.layout)
    }

    private var files: TreeFiles { TreeFiles(root: root) }

    // MARK: KernelWriter

    public func perform(_ write: SysfsWrite) throws(KernelError) {
        if case .reset(let bdf) = write {
            let hang = state.withLock { state -> Int in
                guard let milliseconds = state.faults[bdf]?.hangWriteMs else { return 0 }
                state.faults[bdf]?.hangWriteMs = nil
                return milliseconds
            }
            if hang > 0 { Self.sleep(milliseconds: hang) }
        }
        try state.withLock { (state: inout State) throws(KernelError) -> Void in
            do throws(KernelError) {
                try apply(write, &state)
                state.log.append(WriteRecord(write: write, error: nil))
            } catch {
                state.log.append(WriteRecord(write: write, error: error))
                throw error
            }
        }
    }

    // MARK: Inspection and faults (for tests and the simulator's own API)

    /// Every write so far, in order, with its outcome.
    public var writes: [WriteRecord] { state.withLock { $0.log } }

    public func clearWrites() {
        state.withLock { $0.log.removeAll() }
    }

    /// Devices present now (a vanished or removed device is absent until a rescan).
    public var presentDevices: [BDF] { state.withLock { $0.devices.keys.sorted() } }

    /// Whether the device has come back from its last reset; nil when it is not present.
    public func isReady(_ bdf: BDF) -> Bool? {
        state.withLock { $0.devices[bdf]?.ready }
    }

    /// Where the device's capabilities are in its config space; nil when it is not present.
    public func configLayout(for bdf: BDF) -> ConfigSpaceBuilder.Layout? {
        state.withLock { $0.devices[bdf]?.layout }
    }

    public func faults(for bdf: BDF) throws(KernelError) -> SimulatorFaults {
        try knownDevice(bdf)
        return state.withLock { $0.faults[bdf] ?? SimulatorFaults() }
    }

    /// Merges the patch into the device's faults (fields it omits keep their value) and returns the
    /// result. Works for a device that has vanished, so its return can be staged.
    @discardableResult
    public func setFaults(_ patch: SimulatorFaults, for bdf: BDF) throws(KernelError) -> SimulatorFaults {
        try knownDevice(bdf)
        return state.withLock { state in
            let merged = (state.faults[bdf] ?? SimulatorFaults()).merging(patch)
            state.faults[bdf] = merged.isEmpty ? nil : merged
            return merged
        }
    }

    /// The delay after a reset that applies now: the fault's, else the device's own.
    public func readyAfterMs(for bdf: BDF) throws(KernelError) -> Int {
        try knownDevice(bdf)
        return state.withLock { $0.faults[bdf]?.readyAfterMs } ?? tree.functions[bdf]!.readyAfterMs
    }

    private func knownDevice(_ bdf: BDF) throws(KernelError) {
        guard tree.functions[bdf] != nil else {
            throw KernelError(code: KernelError.enodev, path: root.device(bdf))
        }
    }

    // MARK: The writes' meaning

    private func apply(_ write: SysfsWrite, _ state: inout State) throws(KernelError) {
        let path = write.path
        // sysfs stores see the bytes as written; attributes that take a word drop one trailing newline.
        let value = write.value.hasSuffix("\n") ? String(write.value.dropLast()) : write.value
        func fail(_ code: Int32) -> KernelError { KernelError(code: code, path: path) }
        func present(_ bdf: BDF) throws(KernelError) -> Device {
            guard let device = state.devices[bdf] else { throw fail(KernelError.enodev) }
            return device
        }

        switch write {
        case .driverOverride(let bdf, _):
            var device = try present(bdf)
            guard value.utf8.count < 4095 else { throw fail(KernelError.einval) }
            // Setting or clearing the override never unbinds; it only changes what matches next.
            device.function.driverOverride = value.isEmpty ? nil : value
            try files.replace(path, text: (device.function.driverOverride ?? "(null)") + "\n")
            state.devices[bdf] = device

        case .unbind(_, let driver):
            guard tree.drivers[driver] != nil else { throw fail(KernelError.enoent) }
            guard let bdf = BDF(value), var device = state.devices[bdf], device.function.driver == driver
            else {
                throw fail(KernelError.enodev)
            }
            tree.unlinkDriver(driver, from: bdf)
            device.function.driver = nil
            state.devices[bdf] = device

        case .bind(_, let driver):
            guard let candidate = tree.drivers[driver] else { throw fail(KernelError.enoent) }
            guard let bdf = BDF(value), var device = state.devices[bdf],
                candidate.matches(device.function, override: device.function.driverOverride)
            else { throw fail(KernelError.enodev) }
            guard device.function.driver == nil else { throw fail(KernelError.ebusy) }
            try tree.linkDriver(driver, to: bdf)
            device.function.driver = driver
            state.devices[bdf] = device

        case .driversProbe:
            guard let bdf = BDF(value), var device = state.devices[bdf] else {
                throw fail(KernelError.enodev)
            }
            guard device.function.driver == nil else { return }
            // An override rules out every other driver; without one the boot-time driver comes back.
            // Nothing binding is still success, as in the kernel: callers must check the link.
            let name = device.function.driverOverride ?? device.function.nativeDriver
            guard let name, tree.drivers[name] != nil else { return }
            try tree.linkDriver(name, to: bdf)
            device.function.driver = name
            state.devices[bdf] = device

        case .reset(let bdf):
            let device = try present(bdf)
            guard !device.function.resetMethods.isEmpty else { throw fail(KernelError.enoent) }
            guard Self.unsigned(value) == 1 else { throw fail(KernelError.einval) }
            guard !device.enabledResetMethods.isEmpty else { throw fail(KernelError.enotty) }
            var faults = state.faults[bdf] ?? SimulatorFaults()
            if let busy = faults.busyWrites {
                faults.busyWrites = busy - 1
                state.faults[bdf] = faults.normalized.isEmpty ? nil : faults.normalized
                throw fail(KernelError.ebusy)
            }
            if faults.vanishOnReset == true {
                faults.vanishOnReset = nil
                state.faults[bdf] = faults.isEmpty ? nil : faults
                try remove(bdf, &state)
                throw fail(KernelError.enodev)
            }
            try beginReset(bdf, faults: faults, &state)

        case .resetMethod(let bdf, _):
            var device = try present(bdf)
            let names = value.split(separator: " ").map(String.init)
            if value == "default" {
                device.enabledResetMethods = device.function.resetMethods
            } else {
                // Unknown, unsupported or too many names: EINVAL and the old list stays.
                guard names.count <= Self.resetMethodNames.count,
                    names.allSatisfy({
                        Self.resetMethodNames.contains($0) && device.function.resetMethods.contains($0)
                    })
                else { throw fail(KernelError.einval) }
                device.enabledResetMethods = names
            }
            let text = device.enabledResetMethods.joined(separator: " ")
            try files.replace(path, text: text.isEmpty ? "" : text + "\n")
            state.devices[bdf] = device

        case .powerControl(let bdf, _):
            _ = try present(bdf)
            guard value == "on" || value == "auto" else { throw fail(KernelError.einval) }
            let folder = tree.devicePath(bdf)
            try files.replace(folder + "/power/control", text: value + "\n")
            if value == "on" {
                try files.replace(folder + "/power_state", text: "D0\n")
                try files.replace(folder + "/power/runtime_status", text: "active\n")
            }

        case .remove(let bdf):
            _ = try present(bdf)
            guard let number = Self.unsigned(value) else { throw fail(KernelError.einval) }
            if number != 0 { try remove(bdf, &state) }

        case .rescan:
            guard let number = Self.unsigned(value) else { throw fail(KernelError.einval) }
            if number != 0 { try rescan(&state) }
        }
    }

    // MARK: Reset and readiness

    private func beginReset(_ bdf: BDF, faults: SimulatorFaults, _ state: inout State) throws(KernelError) {
        guard var device = state.devices[bdf] else { return }
        device.ready = false
        device.generation = state.nextGeneration
        state.nextGeneration += 1
        state.devices[bdf] = device
        try show(device, valid: false, active: false)

        if faults.neverReady == true { return }
        let delay = faults.readyAfterMs ?? device.function.readyAfterMs
        if delay <= 0 {
            try finishReset(bdf, generation: device.generation, &state)
            return
        }
        let generation = device.generation
        if Self.kind(device) == .cxlDVSEC {
            // Memory_Info_Valid returns first; Memory_Active only when the memory is usable.
            schedule(after: delay / 4) { (kernel: SimulatedKernel, state: inout State) throws(KernelError) in
                guard let device = state.devices[bdf], device.generation == generation else { return }
                try kernel.show(device, valid: true, active: false)
            }
        }
        schedule(after: delay) { (kernel: SimulatedKernel, state: inout State) throws(KernelError) in
            try kernel.finishReset(bdf, generation: generation, &state)
        }
    }

    private func finishReset(_ bdf: BDF, generation: Int, _ state: inout State) throws(KernelError) {
        guard var device = state.devices[bdf], device.generation == generation else { return }
        device.ready = true
        state.devices[bdf] = device
        try show(device, valid: true, active: true)
    }

    /// Runs a step later under the lock; a failure there (the tree deleted under us) has nobody to
    /// report to, so it is dropped.
    private func schedule(
        after milliseconds: Int,
        _ step: @escaping @Sendable (SimulatedKernel, inout State) throws(KernelError) -> Void
    ) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(max(milliseconds, 0))) {
            self.state.withLock { state in try? step(self, &state) }
        }
    }

    /// A device with CXL readiness but no DVSEC to show it in falls back to the generic way.
    private static func kind(_ device: Device) -> ReadinessProbeKind {
        device.function.readiness == .cxlDVSEC && device.layout.cxlRange1SizeLow == nil
            ? .pci : device.function.readiness
    }

    /// Writes the device's readiness where its probe looks. Partial readiness (valid, not active)
    /// only exists for CXL; the other kinds are ready only when both are set.
    private func show(_ device: Device, valid: Bool, active: Bool) throws(KernelError) {
        let bdf = device.function.bdf
        let config = tree.devicePath(bdf) + "/config"
        switch Self.kind(device) {
        case .cxlDVSEC:
            guard let offset = device.layout.cxlRange1SizeLow, let range = device.function.cxlRange1 else {
                return
            }
            let value = ConfigSpaceBuilder.cxlRange1SizeLow(range, valid: valid, active: active)
            try files.patch(config, offset: offset, ConfigSpaceBuilder.littleEndian(value))
        case .nvgraceBAR0:
            try tree.setNvgraceReady(bdf, ready: valid && active)
        case .pci:
            // A function in reset answers config reads with all ones (vendor 0xffff).
            let bytes = valid && active ? device.config : [UInt8](repeating: 0xFF, count: device.config.count)
            try files.replace(config, bytes)
        }
    }

    // MARK: Removal and rescan

    /// Removes the device and everything below it from the tree and the state.
    private func remove(_ bdf: BDF, _ state: inout State) throws(KernelError) {
        let gone = state.devices.keys.filter { candidate in
            var current: BDF? = candidate
            while let next = current {
                if next == bdf { return true }
                current = tree.functions[next]?.parent
            }
            return false
        }
        for member in gone {
            state.devices[member] = nil
            state.removed.insert(member)
        }
        try tree.removeFunction(bdf)
    }

    /// Re-enumerates removed devices as a fresh boot would find them: no override, the native driver.
    private func rescan(_ state: inout State) throws(KernelError) {
        let order = state.removed.compactMap { tree.functions[$0] }.sorted {
            (tree.depth(of: $0), $0.bdf) < (tree.depth(of: $1), $1.bdf)
        }
        for original in order {
            var function = original
            function.driverOverride = nil
            function.driver = function.nativeDriver.flatMap { tree.drivers[$0] == nil ? nil : $0 }
            try tree.writeFunction(function)
            state.devices[function.bdf] = Self.device(function, tree)
            state.removed.remove(function.bdf)
        }
    }

    // MARK: Helpers

    /// `kstrtoul(buf, 0, ...)`: decimal, `0x` hex or leading-zero octal; nil when it does not parse.
    static func unsigned(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        if text.count > 1 && text.hasPrefix("0") { return UInt64(text.dropFirst(), radix: 8) }
        return UInt64(text)
    }

    static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
