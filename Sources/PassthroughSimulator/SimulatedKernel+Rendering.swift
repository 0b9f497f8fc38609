import Passthrough

/// What a simulated device's files show, derived from its logical state: the registers a reader
/// polls (config space, nvgrace's BAR0 words) and the runtime power files.
struct DeviceView: Hashable {
    var power: RuntimePower
    var control: String
    var config: [UInt8]
    /// The value of both nvgrace words in `resource0`; nil when BAR0 is too small to hold them.
    var bar0Word: UInt32?
    /// Powered off by a fault: `power_state` says D3cold whatever runtime PM says.
    var d3cold = false
    /// The link as trained now (a fault can degrade it).
    var link: SimulatedFunction.Link? = nil
}

extension SimulatedKernel {
    /// Brings the device's files in line with its state, writing only what changed since the last
    /// render (readers polling a file see it replaced only when its meaning changes).
    func render(_ bdf: BDF, _ state: inout State) throws(KernelError) {
        guard var device = state.devices[bdf] else { return }
        let view = Self.view(of: device, power: power(of: device, state), faults: state.faults[bdf])
        let old = device.shown
        let folder = tree.devicePath(bdf)
        if old?.power != view.power || old?.d3cold != view.d3cold {
            try files.replace(
                folder + "/power_state", text: (view.d3cold ? "D3cold" : view.power.powerState) + "\n")
            try files.replace(folder + "/power/runtime_status", text: view.power.runtimeStatus + "\n")
        }
        if old?.control != view.control {
            try files.replace(folder + "/power/control", text: view.control + "\n")
        }
        if old?.config != view.config { try files.replace(folder + "/config", view.config) }
        if let link = view.link, old != nil, old?.link != link {
            try files.replace(
                folder + "/current_link_speed",
                text: SimulatedFunction.Link.speedString(link.currentGeneration) + "\n")
            try files.replace(folder + "/current_link_width", text: "\(link.currentWidth)\n")
        }
        if old?.bar0Word != view.bar0Word, let word = view.bar0Word { try tree.setNvgraceWords(bdf, word) }
        device.shown = view
        state.devices[bdf] = device
    }

    /// Renders every present device in the IOMMU group (a holder came or went).
    func renderGroup(_ group: Int, _ state: inout State) throws(KernelError) {
        for (bdf, device) in state.devices.sorted(by: { $0.key < $1.key })
        where device.function.iommuGroup == group {
            try render(bdf, &state)
        }
    }

    func power(of device: Device, _ state: State) -> RuntimePower {
        let held = device.function.iommuGroup.map { group in
            state.processes.values.contains { $0.holds(group: group) }
        }
        return RuntimePower.state(
            driver: device.function.driver, control: device.powerControl, held: held ?? false,
            inResetWrite: device.resetWrites > 0)
    }

    static func view(of device: Device, power: RuntimePower, faults: SimulatorFaults? = nil) -> DeviceView {
        var link = device.function.link
        if faults?.degradedLink == true {
            link.currentGeneration = 1
            link.currentWidth = 1
        }
        var config = config(of: device, power: power)
        if faults?.allOnes == true || faults?.d3cold == true {
            config = [UInt8](repeating: 0xFF, count: config.count)
        } else if faults?.degradedLink == true, let offset = device.layout.linkStatus {
            let status = PCIeLinkStatus(
                speedCode: UInt8(link.currentGeneration), width: link.currentWidth, linkTraining: false,
                dataLinkLayerLinkActive: true)
            config.replaceSubrange(
                offset..<offset + 2, with: ConfigSpaceBuilder.littleEndian(UInt32(status.raw)).prefix(2))
        }
        return DeviceView(
            power: power, control: device.powerControl, config: config,
            bar0Word: bar0Word(of: device, power: power), d3cold: faults?.d3cold == true,
            link: device.function.capture == nil ? link : nil)
    }

    /// A device with CXL readiness but no DVSEC to show it in falls back to the generic way.
    static func kind(_ device: Device) -> ReadinessProbeKind {
        device.function.readiness == .cxlDVSEC && device.layout.cxlRange1SizeLow == nil
            ? .pci : device.function.readiness
    }

    /// Config space stays readable in D3hot (PMCSR says D3hot); a generic device in reset answers
    /// with all ones (vendor 0xffff); a CXL device shows its readiness in Range 1 Size Low.
    static func config(of device: Device, power: RuntimePower) -> [UInt8] {
        if kind(device) == .pci && !device.ready {
            return [UInt8](repeating: 0xFF, count: device.config.count)
        }
        var bytes = device.config
        func put(_ value: UInt32, at offset: Int, size: Int) {
            bytes.replaceSubrange(
                offset..<offset + size, with: ConfigSpaceBuilder.littleEndian(value).prefix(size))
        }
        if kind(device) == .cxlDVSEC, let offset = device.layout.cxlRange1SizeLow,
            let range = device.function.cxlRange1
        {
            let value = ConfigSpaceBuilder.cxlRange1SizeLow(
                range, valid: device.memoryInfoValid, active: device.ready)
            put(value, at: offset, size: 4)
        }
        if let offset = device.layout.powerControlStatus {
            let pmcsr = ConfigSpaceBuilder.read16(bytes, at: offset) & ~0x3 | power.pmcsrPowerState
            put(UInt32(pmcsr), at: offset, size: 2)
        }
        return bytes
    }

    /// Memory reads of a suspended function's BAR return all-ones; awake, an nvgrace GPU's words read
    /// 0xFF once ready and 0 in reset, and any other device's read 0 (nothing modelled there).
    static func bar0Word(of device: Device, power: RuntimePower) -> UInt32? {
        let end = (SysfsTreeBuilder.nvgraceReadyOffsets.max() ?? 0) + 4
        guard let bar0 = device.function.bars.first(where: { $0.index == 0 }), bar0.size >= UInt64(end) else {
            return nil
        }
        // A captured host may show no `resource0` for a BAR (virtio functions in a guest do not).
        if let capture = device.function.capture, capture.files["resource0"] == nil { return nil }
        if power == .suspended { return RuntimePower.allOnes }
        return device.function.readiness == .nvgraceBAR0 && device.ready
            ? SysfsTreeBuilder.nvgraceReadyValue : 0
    }
}
