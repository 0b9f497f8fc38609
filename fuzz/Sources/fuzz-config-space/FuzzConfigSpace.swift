import Passthrough

/// Every reader of configuration space on any bytes (a short read, a broken capability chain, a
/// device that answers garbage): answers within the bytes, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let space = ConfigSpace(bytes)
    _ = (space.vendorID, space.deviceID, space.command, space.status, space.isAllOnes)
    _ = (space.headerType, space.headerLayout, space.isMultiFunction, space.hasCapabilityList)

    let capabilities = space.capabilities()
    precondition(Set(capabilities.map(\.offset)).count == capabilities.count, "a capability seen twice")
    for capability in capabilities {
        precondition(capability.offset >= 0x40 && capability.offset < bytes.count, "capability outside")
    }
    let extended = space.extendedCapabilities()
    precondition(Set(extended.map(\.offset)).count == extended.count, "an extended capability seen twice")
    for capability in extended {
        precondition(capability.offset >= 0x100 && capability.offset + 4 <= bytes.count, "outside")
    }
    _ = space.capability(Capability.pciExpress)
    _ = space.extendedCapability(ExtendedCapability.designatedVendorSpecific)

    for dvsec in space.dvsecs() {
        precondition(dvsec.offset + 10 <= bytes.count, "DVSEC header outside the bytes")
    }
    if let (offset, register) = space.cxlRange1SizeLow() {
        precondition(offset + CXLRange1SizeLow.offsetInDVSEC + 4 <= bytes.count, "register outside")
        _ = (register.readiness, register.activeTimeoutSeconds, register.sizeLowMiB)
    }
    _ = (space.nvidiaGPUCapabilityBitmap, space.hasMigHardwareBug)
    _ = (space.pciExpressCapability, space.supportsFunctionLevelReset)
    if let link = space.linkCapabilities {
        _ = (link.maxSpeedCode, link.maxWidth)
    }
    if let status = space.linkStatus {
        _ = (status.currentSpeedCode, status.width, status.linkTraining, status.dataLinkLayerLinkActive)
    }

    // What a capture records: the same bytes with the serial numbers zeroed, nothing else changed.
    let scrubbed = HostCaptureWriter.withoutSerialNumbers(bytes)
    precondition(scrubbed.count == bytes.count, "scrubbing changed the length")
    return 0
}
