import GraceSimulation
import GraceTestSupport
import Logging
import Passthrough
import PassthroughSimulator
import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// The inventory follows the kernel's device events: with periodic rescans off, a removal, a
/// re-addition and driver changes still reach the published snapshot, through the simulator's
/// uevents and the targeted re-read they trigger.
@Suite struct DeviceEventInventoryTests {
    static let h100 = BDF("0000:c3:00.0")!
    static let h100Audio = BDF("0000:c3:00.1")!
    static let nvme = BDF("0000:01:00.0")!

    /// An application over a fresh demo host that never rescans on its own.
    final class Service: @unchecked Sendable {
        let simulated: SimulatedHost
        let application: Application
        let inventory: InventoryService

        /// Builds and starts the service on a thread of its own: starting blocks (a scan, synced
        /// writes), and so does the stop that its last reference hands to `BlockingTeardowns`.
        static func start(
            events: Bool = true, prepare: @escaping @Sendable (SimulatedKernel) throws -> Void = { _ in }
        ) async throws -> Service {
            try await offPool { try Service(events: events, prepare: prepare) }
        }

        /// `prepare` changes the host before the service's first scan.
        private init(events: Bool, prepare: (SimulatedKernel) throws -> Void) throws {
            simulated = try SimulatedHost.createTemporary(prefix: "graceapi-uevent")
            try prepare(simulated.kernel)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            application = try Application(
                host: .simulated(simulated),
                store: try GraceStore(path: simulated.folder + "/graced.sqlite"),
                server: RunningService.openLoopback(), rescanIntervalSeconds: 0,
                deviceEvents: events ? simulated.kernel.deviceEvents.source() : nil, logger: logger)
            try application.start()
            inventory = application.inventory
        }

        func gpu(_ bdf: BDF) -> GPUDevice? { inventory.snapshot.gpu(bdf.description) }

        deinit {
            let (application, simulated) = (application, simulated)
            BlockingTeardowns.shared.run {
                application.stop()
                try? simulated.removeFiles()
            }
        }
    }

    /// Waits (off the cooperative pool) until the snapshot satisfies `condition`, for at most 10 s:
    /// the events arrive on another thread. Returns whether it did.
    static func eventually(_ service: Service, _ condition: @escaping @Sendable (Service) -> Bool) async
        -> Bool
    {
        await offPool {
            for _ in 0..<10_000 {
                if condition(service) { return true }
                usleep(1000)
            }
            return condition(service)
        }
    }

    @Test func aRemovedGPUShowsMissingAndARescanListsItAgain() async throws {
        let service = try await Service.start()
        #expect(service.gpu(Self.h100)?.state == .ready)
        try service.simulated.kernel.perform(.remove(Self.h100))
        #expect(await Self.eventually(service) { $0.gpu(Self.h100)?.state == .missing })
        try service.simulated.kernel.perform(.rescan)
        #expect(await Self.eventually(service) { $0.gpu(Self.h100).map { $0.state != .missing } ?? false })
        // Re-enumerated as a fresh boot finds it: the native driver, no override.
        #expect(service.gpu(Self.h100)?.driver == "nvidia")
        #expect(service.gpu(Self.h100)?.driverOverride == nil)
    }

    @Test func unbindAndBindOfAGPUAreReflected() async throws {
        let service = try await Service.start()
        #expect(service.gpu(Self.h100)?.driver == "vfio-pci")
        try service.simulated.kernel.perform(.unbind(Self.h100, driver: "vfio-pci"))
        #expect(await Self.eventually(service) { $0.gpu(Self.h100)?.driver == nil })
        try service.simulated.kernel.perform(.bind(Self.h100, driver: "vfio-pci"))
        #expect(await Self.eventually(service) { $0.gpu(Self.h100)?.driver == "vfio-pci" })
    }

    /// The audio function is not managed, but the H100 lists it among its IOMMU group's members.
    @Test func aGroupMatesDriverChangeReachesTheGPUsGroupListing() async throws {
        let service = try await Service.start()
        #expect(Self.audioDriver(service) == .some("snd_hda_intel"))
        try service.simulated.kernel.perform(.unbind(Self.h100Audio, driver: "snd_hda_intel"))
        #expect(await Self.eventually(service) { Self.audioDriver($0) == .some(nil) })
    }

    /// The audio function's entry in the H100's group listing: nil when absent, .some(nil) unbound.
    static func audioDriver(_ service: Service) -> String?? {
        service.gpu(h100)?.iommuGroup?.members.first { $0.bdf == h100Audio.description }.map(\.driver)
    }

    /// Without events (and without rescans) nothing changes: the tests above see the events' work,
    /// not something else refreshing the inventory.
    @Test func withoutEventsTheSnapshotStaysAsScanned() async throws {
        let service = try await Service.start(events: false)
        try service.simulated.kernel.perform(.unbind(Self.h100, driver: "vfio-pci"))
        try await Task.sleep(for: .milliseconds(200))
        #expect(service.gpu(Self.h100)?.driver == "vfio-pci")
    }

    @Test func rereadNamesWhatItReadAndNothingElse() async throws {
        let service = try await Service.start(events: false)
        // The NVMe drive is not managed and not a GPU's group-mate: nothing to read.
        #expect(service.inventory.reread([Self.nvme]) == .reread([]))
        #expect(service.inventory.reread([Self.h100Audio]) == .reread([Self.h100.description]))
        #expect(service.inventory.reread([Self.h100]) == .reread([Self.h100.description]))
    }

    /// A GPU the first scan never saw: the re-read cannot name it, a full scan does.
    @Test func aGPUFirstSeenThroughAnEventIsListedByAFullScan() async throws {
        let service = try await Service.start { kernel in try kernel.perform(.remove(Self.h100)) }
        #expect(service.gpu(Self.h100) == nil)
        #expect(service.inventory.reread([Self.h100]) == .reread([]))
        try service.simulated.kernel.perform(.rescan)
        #expect(await Self.eventually(service) { $0.gpu(Self.h100)?.state == .ready })
        #expect(service.inventory.reread([Self.h100]) == .reread([Self.h100.description]))
    }
}
