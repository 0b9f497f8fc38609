import Dispatch
import Passthrough
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A `KernelWriter` that gives each write the Linux kernel's meaning on a simulated sysfs tree.
///
/// Readers keep reading files: binding moves `driver` links, a reset makes the device's registers read
/// "not ready" and a timer makes them read "ready" again later, exactly where the real kernel and
/// device would show it (CXL Range 1 Size Low in `config`, nvgrace's BAR0 words in `resource0`, or an
/// all-ones `config`). Runtime power management is modelled too: an idle VFIO-bound function sits in
/// D3hot and its BAR0 reads all-ones (see `RuntimePower`). Nothing above the seam can tell it from the
/// real one.
///
/// Each device keeps its logical state (ready, power control, reset writes in progress) apart from
/// what its files show; every change ends in `render`, which derives the files from the state, so the
/// two cannot disagree whichever write or timer came last.
///
/// Beside the sysfs tree the kernel keeps a fake procfs (processes holding `/dev/vfio/<group>`, which
/// keep their devices awake) and the `/dev/vfio` nodes of groups with a VFIO-bound member.
///
/// One lock guards the state and the tree's files; it is never held while sleeping (an injected hang
/// or a slow reset blocks only the writer, as a slow kernel write would).
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
        /// The config space when the device is ready and awake.
        var config: [UInt8]
        var layout: ConfigSpaceBuilder.Layout
        /// Whether the device is back from its last reset, whatever its files show: a suspended
        /// nvgrace GPU is ready yet its BAR0 words read all-ones.
        var ready = true
        /// CXL Memory_Info_Valid, which comes back before Memory_Active (`ready`) after a reset.
        var memoryInfoValid = true
        /// Which reset the pending readiness timers belong to; a newer reset or a removal voids them.
        var generation = 0
        /// Which enumeration of the device this is, so a reset write that outlives a removal and
        /// rescan does not touch the new device.
        var incarnation = 0
        /// `power/control`.
        var powerControl = "auto"
        /// Reset writes in progress; each keeps the device awake until it returns.
        var resetWrites = 0
        /// What the files show now; nil until first rendered.
        var shown: DeviceView?
    }

    struct State {
        var devices: [BDF: Device] = [:]
        var removed: Set<BDF> = []
        var faults: [BDF: SimulatorFaults] = [:]
        var log: [WriteRecord] = []
        var nextGeneration = 1
        var processes: [Int32: SimulatedProcess] = [:]
        /// Groups whose `/dev/vfio/<group>` node exists.
        var vfioNodes: Set<Int> = []
        /// Devices whose reset writes are held (`holdResetWrites`), with the writes blocked now.
        var holds: [BDF: ResetWriteHold] = [:]
        /// Devices whose return from a reset is held (`holdReadiness`), with the returns that came
        /// due meanwhile.
        var readinessHolds: [BDF: [Step]] = [:]
    }

    /// A change the kernel makes later under its lock (a device's readiness coming back).
    typealias Step = @Sendable (SimulatedKernel, inout State) throws(KernelError) -> Void

    /// Reset writes a test holds in the kernel until it lets them go.
    struct ResetWriteHold {
        /// Signalled once per held write when the hold is released.
        let release = DispatchSemaphore(value: 0)
        var blocked = 0
    }

    /// A reset write the kernel has started and that returns to its writer later.
    struct PendingResetWrite {
        var bdf: BDF
        var incarnation: Int
        var milliseconds: Int
        /// Held until the test releases it (instead of `milliseconds`).
        var hold: DispatchSemaphore?
    }

    public let root: SysfsRoot
    /// The fake `/proc`: `<pid>/comm` and `<pid>/fd/<n>` of the simulated processes.
    public let procRoot: String
    /// The fake `/dev`, holding `vfio/vfio` and `vfio/<group>`.
    public let devRoot: String
    let tree: SysfsTreeBuilder
    let state: Mutex<State>
    /// The uevents the kernel sends as its writes add, remove, bind and unbind functions.
    public let deviceEvents = SimulatedDeviceEvents()

    /// A kernel over a tree that `tree.build()` has written. The procfs and `/dev` go in `hostFolder`
    /// (default: the folder holding the sysfs root); the devices' power files are brought in line with
    /// runtime power management, so idle VFIO-bound functions start in D3hot.
    public init(tree: SysfsTreeBuilder, hostFolder: String? = nil) throws(KernelError) {
        root = tree.root
        self.tree = tree
        let folder = hostFolder ?? Self.parentFolder(of: tree.root.path)
        procRoot = folder + "/proc"
        devRoot = folder + "/dev"
        var initial = State()
        for function in tree.functions.values {
            initial.devices[function.bdf] = Self.device(function, tree, incarnation: initial.nextGeneration)
            initial.nextGeneration += 1
        }
        state = Mutex(initial)
        try procfs.makeRoot()
        try TreeFiles(root: SysfsRoot(path: devRoot)).makeFolders("vfio")
        // The container node exists whenever the vfio module is loaded.
        try TreeFiles(root: SysfsRoot(path: devRoot)).create("vfio/vfio", [], mode: 0o666)
        try state.withLock { (state: inout State) throws(KernelError) -> Void in
            for bdf in state.devices.keys.sorted() { try render(bdf, &state) }
            try syncVFIONodes(&state)
        }
    }

    private static func device(_ function: SimulatedFunction, _ tree: SysfsTreeBuilder, incarnation: Int)
        -> Device
    {
        let config = tree.configSpace(for: function)
        var device = Device(
            function: function, enabledResetMethods: function.resetMethods, config: config.bytes,
            layout: config.layout, incarnation: incarnation)
        device.powerControl = function.powerControl
        return device
    }

    private static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    var files: TreeFiles { TreeFiles(root: root) }

    // MARK: KernelWriter

    public func perform(_ write: SysfsWrite) throws(KernelError) {
        if case .reset(let bdf) = write {
            let hang = state.withLock { state -> Int in
                guard let milliseconds = state.faults[bdf]?.hangWriteMs else { return 0 }
                state.faults[bdf]?.hangWriteMs = nil
                return milliseconds
            }
            if hang > 0 { Self.sleep(milliseconds: hang) }
            while state.withLock({ $0.faults[bdf]?.holdResetWrite == true }) {
                Self.sleep(milliseconds: 2)
            }
        }
        do throws(KernelError) {
            let pending = try state.withLock { (state: inout State) throws(KernelError) in
                try apply(write, &state)
            }
            if let pending { try finishResetWrite(pending) }
            state.withLock { $0.log.append(WriteRecord(write: write, error: nil)) }
        } catch {
            state.withLock { $0.log.append(WriteRecord(write: write, error: error)) }
            throw error
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
            let before = state.faults[bdf]
            let merged = (before ?? SimulatorFaults()).merging(patch)
            state.faults[bdf] = merged.isEmpty ? nil : merged
            // Released from its hold: a device still in reset comes back at once.
            if before?.heldInReset == true, merged.heldInReset == nil, merged.neverReady == nil,
                let device = state.devices[bdf], !device.ready
            {
                try? finishReset(bdf, generation: device.generation, &state)
            }
            // Faults that change what the device shows take effect at once.
            try? render(bdf, &state)
            return merged
        }
    }

    /// From now on every reset write of the device blocks its writer in the kernel, the device awake
    /// and in reset (as during `resetWriteMs`), until `releaseResetWrites`: a test that needs a job
    /// to be in the middle of a write gets a window it controls, however slowly its threads run.
    public func holdResetWrites(_ bdf: BDF) throws(KernelError) {
        try knownDevice(bdf)
        state.withLock { state in
            if state.holds[bdf] == nil { state.holds[bdf] = ResetWriteHold() }
        }
    }

    /// Reset writes of the device blocked by `holdResetWrites` now.
    public func heldResetWrites(_ bdf: BDF) -> Int {
        state.withLock { $0.holds[bdf]?.blocked ?? 0 }
    }

    /// Lets every held reset write of the device return (each then finishes as usual) and holds no
    /// more.
    public func releaseResetWrites(_ bdf: BDF) {
        guard let hold = state.withLock({ $0.holds.removeValue(forKey: bdf) }) else { return }
        for _ in 0..<hold.blocked { hold.release.signal() }
    }

    /// From now on the device's return from a reset (ready: Memory_Active on CXL, BAR0's words on
    /// nvgrace, config space) still comes due after its delay but waits for the test, until
    /// `releaseReadiness`; the steps before it (CXL's Memory_Info_Valid) come on time. A test that
    /// must see the device still in reset, or a wait that has not ended yet, gets that for as long
    /// as it needs, however slowly it runs.
    public func holdReadiness(_ bdf: BDF) throws(KernelError) {
        try knownDevice(bdf)
        state.withLock { state in
            if state.readinessHolds[bdf] == nil { state.readinessHolds[bdf] = [] }
        }
    }

    /// Returns of the device that came due while held and wait for `releaseReadiness`.
    public func heldReadinessSteps(_ bdf: BDF) -> Int {
        state.withLock { $0.readinessHolds[bdf]?.count ?? 0 }
    }

    /// Applies the held returns of the device, in the order they came due, and ends the hold.
    public func releaseReadiness(_ bdf: BDF) {
        state.withLock { state in
            guard let held = state.readinessHolds.removeValue(forKey: bdf) else { return }
            for step in held { try? step(self, &state) }
        }
    }

    /// The delay after a reset that applies now: the fault's, else the device's own.
    public func readyAfterMs(for bdf: BDF) throws(KernelError) -> Int {
        try knownDevice(bdf)
        return state.withLock { $0.faults[bdf]?.readyAfterMs } ?? tree.functions[bdf]!.readyAfterMs
    }

    /// How long a reset write blocks now: the fault's, else the device's own.
    public func resetWriteMs(for bdf: BDF) throws(KernelError) -> Int {
        try knownDevice(bdf)
        return state.withLock { $0.faults[bdf]?.resetWriteMs } ?? tree.functions[bdf]!.resetWriteMs
    }

    /// The device's runtime power state now; nil when it is not present.
    public func runtimePower(_ bdf: BDF) -> RuntimePower? {
        state.withLock { state in state.devices[bdf].map { power(of: $0, state) } }
    }

    private func knownDevice(_ bdf: BDF) throws(KernelError) {
        guard tree.functions[bdf] != nil else {
            throw KernelError(.operationNotSupportedByDevice, path: root.device(bdf))
        }
    }

    // MARK: The writes' meaning

    /// Gives the write its meaning under the lock. A reset write returns what is left of it: the
    /// writer waits out the reset with the lock released, then the device may suspend again.
    private func apply(_ write: SysfsWrite, _ state: inout State) throws(KernelError) -> PendingResetWrite? {
        let path = write.path
        // sysfs stores see the bytes as written; attributes that take a word drop one trailing newline.
        let value = write.value.hasSuffix("\n") ? String(write.value.dropLast()) : write.value
        func fail(_ errno: Errno) -> KernelError { KernelError(errno, path: path) }
        func present(_ bdf: BDF) throws(KernelError) -> Device {
            guard let device = state.devices[bdf] else { throw fail(.operationNotSupportedByDevice) }
            return device
        }

        switch write {
        case .driverOverride(let bdf, _):
            var device = try present(bdf)
            guard value.utf8.count < 4095 else { throw fail(.invalidArgument) }
            // Setting or clearing the override never unbinds; it only changes what matches next.
            device.function.driverOverride = value.isEmpty ? nil : value
            try files.replace(path, text: (device.function.driverOverride ?? "(null)") + "\n")
            state.devices[bdf] = device

        case .unbind(_, let driver):
            guard tree.drivers[driver] != nil else { throw fail(.noSuchFileOrDirectory) }
            guard let bdf = BDF(value), var device = state.devices[bdf], device.function.driver == driver
            else {
                throw fail(.operationNotSupportedByDevice)
            }
            tree.unlinkDriver(driver, from: bdf)
            device.function.driver = nil
            state.devices[bdf] = device
            try driverChanged(bdf, &state)
            deviceEvents.announce([DeviceEvent(.unbind, bdf)])

        case .bind(_, let driver):
            guard let candidate = tree.drivers[driver] else { throw fail(.noSuchFileOrDirectory) }
            guard let bdf = BDF(value), var device = state.devices[bdf],
                candidate.matches(device.function, override: device.function.driverOverride)
            else { throw fail(.operationNotSupportedByDevice) }
            guard device.function.driver == nil else { throw fail(.resourceBusy) }
            try tree.linkDriver(driver, to: bdf)
            device.function.driver = driver
            state.devices[bdf] = device
            try driverChanged(bdf, &state)
            deviceEvents.announce([DeviceEvent(.bind, bdf)])

        case .driversProbe:
            guard let bdf = BDF(value), var device = state.devices[bdf] else {
                throw fail(.operationNotSupportedByDevice)
            }
            guard device.function.driver == nil else { return nil }
            // An override rules out every other driver; without one the boot-time driver comes back.
            // Nothing binding is still success, as in the kernel: callers must check the link.
            let name = device.function.driverOverride ?? device.function.nativeDriver
            guard let name, tree.drivers[name] != nil else { return nil }
            try tree.linkDriver(name, to: bdf)
            device.function.driver = name
            state.devices[bdf] = device
            try driverChanged(bdf, &state)
            deviceEvents.announce([DeviceEvent(.bind, bdf)])

        case .reset(let bdf):
            let device = try present(bdf)
            guard !device.function.resetMethods.isEmpty else { throw fail(.noSuchFileOrDirectory) }
            guard Self.unsigned(value) == 1 else { throw fail(.invalidArgument) }
            guard !device.enabledResetMethods.isEmpty else { throw fail(.inappropriateIOCTLForDevice) }
            var faults = state.faults[bdf] ?? SimulatorFaults()
            if let busy = faults.busyWrites {
                faults.busyWrites = busy - 1
                state.faults[bdf] = faults.normalized.isEmpty ? nil : faults.normalized
                throw fail(.resourceBusy)
            }
            if faults.vanishOnReset == true {
                faults.vanishOnReset = nil
                state.faults[bdf] = faults.isEmpty ? nil : faults
                try remove(bdf, &state)
                throw fail(.operationNotSupportedByDevice)
            }
            try beginReset(bdf, faults: faults, &state)
            state.holds[bdf]?.blocked += 1
            return PendingResetWrite(
                bdf: bdf, incarnation: device.incarnation,
                milliseconds: faults.resetWriteMs ?? device.function.resetWriteMs,
                hold: state.holds[bdf]?.release)

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
                else { throw fail(.invalidArgument) }
                device.enabledResetMethods = names
            }
            let text = device.enabledResetMethods.joined(separator: " ")
            try files.replace(path, text: text.isEmpty ? "" : text + "\n")
            state.devices[bdf] = device

        case .powerControl(let bdf, _):
            var device = try present(bdf)
            guard RuntimePower.controlValues.contains(value) else { throw fail(.invalidArgument) }
            device.powerControl = value
            state.devices[bdf] = device
            try render(bdf, &state)

        case .remove(let bdf):
            _ = try present(bdf)
            guard let number = Self.unsigned(value) else { throw fail(.invalidArgument) }
            if number != 0 { try remove(bdf, &state) }

        case .rescan:
            guard let number = Self.unsigned(value) else { throw fail(.invalidArgument) }
            if number != 0 { try rescan(&state) }

        case .rescanBus(let bdf):
            _ = try present(bdf)
            guard let number = Self.unsigned(value) else { throw fail(.invalidArgument) }
            if number != 0 { try rescan(&state, onBusOf: bdf) }
        }
        return nil
    }

    /// A driver came or went: the device may suspend or wake, and its group's `/dev/vfio` node may
    /// appear or go.
    private func driverChanged(_ bdf: BDF, _ state: inout State) throws(KernelError) {
        try render(bdf, &state)
        try syncVFIONodes(&state)
    }

    // MARK: Reset and readiness

    /// The device wakes for the write (`pm_runtime_get_sync()`), goes into reset and reads "not
    /// ready"; timers bring it back later.
    private func beginReset(_ bdf: BDF, faults: SimulatorFaults, _ state: inout State) throws(KernelError) {
        guard var device = state.devices[bdf] else { return }
        device.ready = false
        device.memoryInfoValid = false
        device.resetWrites += 1
        device.generation = state.nextGeneration
        state.nextGeneration += 1
        state.devices[bdf] = device
        try render(bdf, &state)

        if faults.neverReady == true || faults.recoversOnlyAfterRescan == true || faults.heldInReset == true {
            return
        }
        // The kernel walks reset_method in order and uses the first method that works: here the first.
        if let method = device.enabledResetMethods.first, faults.ineffectiveMethods?.contains(method) == true
        {
            return
        }
        let delay = faults.readyAfterMs ?? device.function.readyAfterMs
        if delay <= 0 {
            try finishReset(bdf, generation: device.generation, &state)
            return
        }
        let generation = device.generation
        if Self.kind(device) == .cxlDVSEC {
            // Memory_Info_Valid returns first; Memory_Active only when the memory is usable.
            schedule(bdf, after: delay / 4, holdable: false) {
                (kernel: SimulatedKernel, state: inout State) throws(KernelError) in
                guard var device = state.devices[bdf], device.generation == generation else { return }
                device.memoryInfoValid = true
                state.devices[bdf] = device
                try kernel.render(bdf, &state)
            }
        }
        schedule(bdf, after: delay, holdable: true) {
            (kernel: SimulatedKernel, state: inout State) throws(KernelError) in
            try kernel.finishReset(bdf, generation: generation, &state)
        }
    }

    private func finishReset(_ bdf: BDF, generation: Int, _ state: inout State) throws(KernelError) {
        guard var device = state.devices[bdf], device.generation == generation else { return }
        device.ready = true
        device.memoryInfoValid = true
        state.devices[bdf] = device
        try render(bdf, &state)
    }

    /// The rest of a reset write: the kernel resets the device while the writer waits, then drops its
    /// runtime PM reference (`pm_runtime_put()`), so an idle VFIO device suspends again.
    private func finishResetWrite(_ pending: PendingResetWrite) throws(KernelError) {
        if let hold = pending.hold {
            hold.wait()
        } else if pending.milliseconds > 0 {
            Self.sleep(milliseconds: pending.milliseconds)
        }
        try state.withLock { (state: inout State) throws(KernelError) -> Void in
            guard var device = state.devices[pending.bdf], device.incarnation == pending.incarnation else {
                return
            }
            device.resetWrites -= 1
            state.devices[pending.bdf] = device
            try render(pending.bdf, &state)
        }
    }

    /// Runs a step of the device's readiness later under the lock, or keeps a `holdable` one (the
    /// return itself) for the test when the device's readiness is held then; a failure there (the
    /// tree deleted under us) has nobody to report to, so it is dropped.
    private func schedule(_ bdf: BDF, after milliseconds: Int, holdable: Bool, _ step: @escaping Step) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(max(milliseconds, 0))) {
            self.state.withLock { state in
                if holdable && state.readinessHolds[bdf] != nil {
                    state.readinessHolds[bdf]?.append(step)
                } else {
                    try? step(self, &state)
                }
            }
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
        var events: [DeviceEvent] = []
        // As the kernel does: the functions below a bridge go first, each unbound before it goes.
        for member in gone.sorted(by: { removalOrder($0, $1) }) {
            if state.devices[member]?.function.driver != nil { events.append(DeviceEvent(.unbind, member)) }
            events.append(DeviceEvent(.remove, member))
            state.devices[member] = nil
            state.removed.insert(member)
        }
        try tree.removeFunction(bdf)
        try syncVFIONodes(&state)
        deviceEvents.announce(events)
    }

    /// Deeper functions first, then by address.
    private func removalOrder(_ first: BDF, _ second: BDF) -> Bool {
        let depths = (tree.functions[first].map(tree.depth) ?? 0, tree.functions[second].map(tree.depth) ?? 0)
        return depths.0 != depths.1 ? depths.0 > depths.1 : first < second
    }

    /// Re-enumerates removed devices as a fresh boot would find them: no override, the native driver.
    /// With `device`, only those on that device's bus or below it (a function's own `rescan`).
    private func rescan(_ state: inout State, onBusOf device: BDF? = nil) throws(KernelError) {
        let reached = { (bdf: BDF) -> Bool in
            guard let device else { return true }
            var current: BDF? = bdf
            while let next = current {
                if next.domain == device.domain && next.bus == device.bus { return true }
                current = self.tree.functions[next]?.parent
            }
            return false
        }
        let order = state.removed.filter(reached).compactMap { tree.functions[$0] }.sorted {
            (tree.depth(of: $0), $0.bdf) < (tree.depth(of: $1), $1.bdf)
        }
        var events: [DeviceEvent] = []
        for original in order {
            var function = original
            function.driverOverride = nil
            function.driver = function.nativeDriver.flatMap { tree.drivers[$0] == nil ? nil : $0 }
            try tree.writeFunction(function)
            var device = Self.device(function, tree, incarnation: state.nextGeneration)
            // A device stuck for good comes back from the rescan as stuck as it went.
            if state.faults[function.bdf]?.neverReady == true {
                device.ready = false
                device.memoryInfoValid = false
            }
            state.devices[function.bdf] = device
            state.nextGeneration += 1
            state.removed.remove(function.bdf)
            try render(function.bdf, &state)
            events.append(DeviceEvent(.add, function.bdf))
            if function.driver != nil { events.append(DeviceEvent(.bind, function.bdf)) }
        }
        try syncVFIONodes(&state)
        deviceEvents.announce(events)
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
