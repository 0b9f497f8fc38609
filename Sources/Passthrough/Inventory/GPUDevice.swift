/// Everything GraceAPI knows about one managed PCI function (a GPU by default), read through the seam.
///
/// Field names are the API's (camelCase); the value is encoded as-is into `GET /gpus`.
public struct GPUDevice: Codable, Hashable, Sendable {
    public var bdf: String
    public var vendorId: String
    public var deviceId: String
    public var subsystemVendorId: String
    public var subsystemDeviceId: String
    public var vendorName: String
    public var deviceName: String
    /// Where `deviceName` came from: `pci.ids`, `graced` (its own table of NVIDIA data-centre GPUs) or
    /// `none` (`Device XXXX`).
    public var nameSource: DeviceNameSource
    /// `0x030200`: class, subclass, programming interface.
    public var classCode: String
    public var revision: String
    @NullEncodable public var driver: String?
    @NullEncodable public var driverOverride: String?
    @NullEncodable public var iommuGroup: IOMMUGroup?
    @NullEncodable public var numaNode: Int?
    @NullEncodable public var parentBridge: String?
    public var link: PCILink
    public var resetMethods: [String]
    public var readinessProbe: ReadinessProbeKind
    public var bars: [BAR]
    @NullEncodable public var memory: DeviceMemory?
    public var state: DeviceState
    /// Where the description's config-space facts (`readinessProbe`, `memory`, `state`) come from:
    /// a GPU in D3cold is not read (the read would power it up), see `DescriptionSource`.
    public var describedFrom: DescriptionSource
    /// What the health watch saw the last time it looked at the GPU while no job held it. A scan
    /// alone says `unknown`; the service lays the watch's findings over it.
    public var health: GPUHealth

    public init(
        bdf: String, vendorId: String, deviceId: String, subsystemVendorId: String,
        subsystemDeviceId: String, vendorName: String, deviceName: String,
        nameSource: DeviceNameSource, classCode: String,
        revision: String, driver: String?, driverOverride: String?, iommuGroup: IOMMUGroup?,
        numaNode: Int?, parentBridge: String?, link: PCILink, resetMethods: [String],
        readinessProbe: ReadinessProbeKind, bars: [BAR], memory: DeviceMemory?, state: DeviceState,
        describedFrom: DescriptionSource = .configSpace, health: GPUHealth = .unknown
    ) {
        self.bdf = bdf
        self.vendorId = vendorId
        self.deviceId = deviceId
        self.subsystemVendorId = subsystemVendorId
        self.subsystemDeviceId = subsystemDeviceId
        self.vendorName = vendorName
        self.deviceName = deviceName
        self.nameSource = nameSource
        self.classCode = classCode
        self.revision = revision
        self.driver = driver
        self.driverOverride = driverOverride
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
        self.parentBridge = parentBridge
        self.link = link
        self.resetMethods = resetMethods
        self.readinessProbe = readinessProbe
        self.bars = bars
        self.memory = memory
        self.state = state
        self.describedFrom = describedFrom
        self.health = health
    }
}

public struct IOMMUGroup: Codable, Hashable, Sendable {
    public struct Member: Codable, Hashable, Sendable {
        public var bdf: String
        @NullEncodable public var driver: String?
        public init(bdf: String, driver: String?) {
            self.bdf = bdf
            self.driver = driver
        }
    }
    public var id: Int
    public var members: [Member]
    public init(id: Int, members: [Member]) {
        self.id = id
        self.members = members
    }
}

/// Link speeds in GT/s (nil where the kernel says `Unknown` or the file is absent) and widths in lanes.
public struct PCILink: Codable, Hashable, Sendable {
    @NullEncodable public var currentSpeed: Double?
    @NullEncodable public var currentWidth: Int?
    @NullEncodable public var maxSpeed: Double?
    @NullEncodable public var maxWidth: Int?
    public init(currentSpeed: Double?, currentWidth: Int?, maxSpeed: Double?, maxWidth: Int?) {
        self.currentSpeed = currentSpeed
        self.currentWidth = currentWidth
        self.maxSpeed = maxSpeed
        self.maxWidth = maxWidth
    }
}

/// Which readiness check applies to a device after a reset or a bind.
public enum ReadinessProbeKind: String, Codable, Hashable, Sendable {
    /// CXL device DVSEC present: Range 1 Memory_Info_Valid, then Memory_Active.
    case cxlDVSEC = "cxl-dvsec"
    /// nvgrace-gpu legacy: BAR0 registers 0x1498 and 0x200BC read 0xFF.
    case nvgraceBAR0 = "nvgrace-bar0"
    /// Every device: IDs back, link trained, BARs as recorded.
    case pci
}

/// Where a description's config-space facts come from.
///
/// Reading config space of a function in D3cold makes the kernel power it up first (and its parent
/// bridge), so a suspended GPU is described from its sysfs attributes alone, which the kernel keeps
/// without touching the device.
public enum DescriptionSource: String, Codable, Hashable, Sendable {
    /// Config space was read for this description: the device was awake.
    case configSpace = "config-space"
    /// The device is suspended (D3cold): the attributes are read now, the config-space facts are
    /// the last ones read while it was awake.
    case earlierConfigSpace = "earlier-config-space"
    /// The device is suspended and was never described awake: the readiness probe is chosen from
    /// the IDs alone, `memory` is null, and `state` is `not_ready` (nothing has seen it answer).
    case sysfs
}

/// What the service can say about a device right now.
public enum DeviceState: String, Codable, Hashable, Sendable {
    case ready
    case notReady = "not_ready"
    case resetting
    case wedged
    case missing
    /// An escalating reset tried every rung and the GPU did not come back: power-cycle the host.
    case needsReboot = "needs_reboot"
}
