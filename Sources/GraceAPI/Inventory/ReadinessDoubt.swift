import Passthrough

/// Why a GPU whose config space answers is still not shown `ready`: its own readiness probe (PCI,
/// CXL DVSEC, nvgrace BAR0, ...) has not said ready since the GPU was last reset, or since a kernel
/// write hung on it. One look at config space cannot see what the nvgrace BAR0 probe sees (a GH200
/// whose C2C link never came back answers config reads normally), so the state `GET /gpus` shows
/// comes from this evidence as well as from the read.
///
/// Raised when a reset is issued (or a write hangs); lifted only by the probe saying ready: the job's
/// own wait, the follow-up that re-probes a GPU whose job ended without a verdict, or the health
/// watch's look.
public struct ReadinessDoubt: Sendable, Equatable {
    /// What the last look of the probe said, or why there was none.
    public var reason: String
    public var sinceMs: Int64
    /// The probe that can lift it, and what the GPU looked like before (IDs, link, BARs).
    public var probe: ReadinessProbeKind
    public var expected: PCIExpectation
    /// Grows with every doubt raised: a look that began before a newer reset cannot lift it.
    public var generation: UInt64
}

/// A change of the state `GET /gpus` shows for a GPU, whoever caused it (a job, a rescan, a kernel
/// device event, the health watch, a readiness follow-up): published as one `device.state` event.
public struct DeviceStateChange: Sendable, Equatable {
    public var bdf: String
    public var from: DeviceState
    public var to: DeviceState
    public var reason: String
}
