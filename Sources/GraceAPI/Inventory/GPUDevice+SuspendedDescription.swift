import Passthrough

extension GPUDevice {
    /// A description made without reading config space (the GPU is in D3cold) takes the config-space
    /// facts of the last description of the same device that had them: its readiness probe, device
    /// memory and state. Anything else, or a different device at the address, is returned as it is.
    func keepingConfigFacts(of earlier: GPUDevice?) -> GPUDevice {
        guard describedFrom == .sysfs, let earlier, earlier.describedFrom != .sysfs,
            earlier.vendorId == vendorId, earlier.deviceId == deviceId,
            earlier.subsystemVendorId == subsystemVendorId, earlier.subsystemDeviceId == subsystemDeviceId
        else { return self }
        var kept = self
        kept.readinessProbe = earlier.readinessProbe
        kept.memory = earlier.memory
        kept.state = earlier.state
        kept.describedFrom = .earlierConfigSpace
        return kept
    }
}
