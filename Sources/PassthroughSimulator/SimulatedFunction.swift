import Passthrough

/// One PCI function of a simulated host: everything the tree builder needs to write its sysfs folder
/// and config space, and everything the simulated kernel needs to give writes their meaning.
public struct SimulatedFunction: Sendable, Hashable {
    /// The PCI Express device/port type (PCIe capability bits 7:4).
    public enum PortType: UInt8, Sendable, Hashable {
        case endpoint = 0
        case legacyEndpoint = 1
        case rootPort = 4
        case upstreamPort = 5
        case downstreamPort = 6

        public var isBridge: Bool { self == .rootPort || self == .upstreamPort || self == .downstreamPort }
    }

    /// Link speed as the PCIe generation (1 = 2.5 GT/s ... 6 = 64 GT/s) and width in lanes.
    public struct Link: Sendable, Hashable {
        public var maxGeneration: Int
        public var maxWidth: Int
        public var currentGeneration: Int
        public var currentWidth: Int

        public init(maxGeneration: Int, maxWidth: Int, currentGeneration: Int, currentWidth: Int) {
            self.maxGeneration = maxGeneration
            self.maxWidth = maxWidth
            self.currentGeneration = currentGeneration
            self.currentWidth = currentWidth
        }

        /// A link trained at its maximum.
        public init(generation: Int, width: Int) {
            self.init(
                maxGeneration: generation, maxWidth: width, currentGeneration: generation, currentWidth: width
            )
        }

        /// The kernel's `pci_speed_string()` for a generation.
        public static func speedString(_ generation: Int) -> String {
            switch generation {
            case 1: "2.5 GT/s PCIe"
            case 2: "5.0 GT/s PCIe"
            case 3: "8.0 GT/s PCIe"
            case 4: "16.0 GT/s PCIe"
            case 5: "32.0 GT/s PCIe"
            case 6: "64.0 GT/s PCIe"
            default: "Unknown"
            }
        }
    }

    /// CXL device DVSEC Range 1 as the device reports it when ready.
    public struct CXLRange: Sendable, Hashable {
        public var size: UInt64
        /// Memory_Active_Timeout (bits 15:13): 0 = 1 s, 1 = 4 s, 2 = 16 s, 3 = 64 s, 4 = 256 s.
        public var timeoutCode: UInt8

        public init(size: UInt64, timeoutCode: UInt8) {
            self.size = size
            self.timeoutCode = timeoutCode
        }
    }

    public var bdf: BDF
    /// The bridge whose secondary bus this function sits on; nil for a function on a root bus.
    public var parent: BDF?
    public var vendor: UInt16
    public var device: UInt16
    public var subsystemVendor: UInt16
    public var subsystemDevice: UInt16
    /// 24 bits: class, subclass, programming interface.
    public var classCode: UInt32
    public var revision: UInt8
    public var portType: PortType
    public var bars: [BAR]
    /// -1 = unknown, as sysfs says it.
    public var numaNode: Int
    public var link: Link
    /// Supported reset methods in the kernel's priority order; empty means no `reset` file.
    public var resetMethods: [String]
    /// The driver bound when the host comes up.
    public var driver: String?
    /// What binds on a probe without an override: the driver this device would get at boot.
    public var nativeDriver: String?
    public var driverOverride: String?
    public var iommuGroup: Int?
    public var serialNumber: UInt64?
    public var msixTableSize: Int?
    /// The 16-bit word at +0xA of NVIDIA's DVSEC id 3; nil means the DVSEC is absent (Grace Hopper).
    public var nvidiaCapabilityBitmap: UInt16?
    public var cxlRange1: CXLRange?
    /// Whether the function has an ACS extended capability (root ports that isolate their children).
    public var acs: Bool
    /// How this device shows that it is not ready after a reset.
    public var readiness: ReadinessProbeKind
    /// How long after a reset the device is ready again, unless a fault says otherwise.
    public var readyAfterMs: Int
    /// How long a `reset` write blocks its writer while the kernel resets the device. The real FLR
    /// takes about 100 to 120 ms, a pm reset about 40 ms, a bus reset about 130 ms; 0 keeps tests fast.
    public var resetWriteMs: Int
    public var irq: Int
    /// `power/control` when the host comes up: `auto` lets an idle VFIO-bound function suspend.
    public var powerControl: String
    /// What a real host showed for this function; the tree then holds the captured attributes and
    /// config space instead of generated ones (see `CaptureTreeBuilder`).
    public var capture: CapturedFunction?

    public init(
        bdf: BDF, parent: BDF?, vendor: UInt16, device: UInt16, subsystemVendor: UInt16 = 0,
        subsystemDevice: UInt16 = 0, classCode: UInt32, revision: UInt8 = 0, portType: PortType = .endpoint,
        bars: [BAR] = [], numaNode: Int = -1, link: Link = Link(generation: 4, width: 16),
        resetMethods: [String] = [], driver: String? = nil, nativeDriver: String? = nil,
        driverOverride: String? = nil, iommuGroup: Int? = nil, serialNumber: UInt64? = nil,
        msixTableSize: Int? = nil, nvidiaCapabilityBitmap: UInt16? = nil, cxlRange1: CXLRange? = nil,
        acs: Bool = false, readiness: ReadinessProbeKind? = nil, readyAfterMs: Int? = nil,
        resetWriteMs: Int = 0,
        irq: Int = 0, powerControl: String = "auto", capture: CapturedFunction? = nil
    ) {
        self.bdf = bdf
        self.parent = parent
        self.vendor = vendor
        self.device = device
        self.subsystemVendor = subsystemVendor
        self.subsystemDevice = subsystemDevice
        self.classCode = classCode
        self.revision = revision
        self.portType = portType
        self.bars = bars
        self.numaNode = numaNode
        self.link = link
        self.resetMethods = resetMethods
        self.driver = driver
        self.nativeDriver = nativeDriver
        self.driverOverride = driverOverride
        self.iommuGroup = iommuGroup
        self.serialNumber = serialNumber
        self.msixTableSize = msixTableSize
        self.nvidiaCapabilityBitmap = nvidiaCapabilityBitmap
        self.cxlRange1 = cxlRange1
        self.acs = acs
        let kind = readiness ?? Self.defaultReadiness(vendor: vendor, device: device, cxl: cxlRange1 != nil)
        self.readiness = kind
        self.readyAfterMs = readyAfterMs ?? Self.defaultReadyAfterMs(kind)
        self.resetWriteMs = resetWriteMs
        self.irq = irq
        self.powerControl = powerControl
        self.capture = capture
    }

    /// A captured bridge need not be PCI Express: its config header says what it is.
    public var isBridge: Bool {
        guard let capture else { return portType.isBridge }
        return [1, 2].contains(ConfigSpace(capture.config).headerLayout)
    }

    /// The CXL DVSEC wins (the driver checks it first); the nvgrace BAR0 registers belong to the
    /// GH200 family (10de:2340-237f); everything else comes back the plain PCI way.
    static func defaultReadiness(vendor: UInt16, device: UInt16, cxl: Bool) -> ReadinessProbeKind {
        if cxl { return .cxlDVSEC }
        if vendor == 0x10de && device & 0xffc0 == 0x2340 { return .nvgraceBAR0 }
        return .pci
    }

    /// Rough shapes of the real waits, scaled down so a demo feels like hardware without being slow.
    static func defaultReadyAfterMs(_ kind: ReadinessProbeKind) -> Int {
        switch kind {
        case .cxlDVSEC: 1500
        case .nvgraceBAR0: 800
        case .pci: 200
        }
    }
}
