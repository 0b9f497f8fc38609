import GraceHTTP
import Passthrough

/// Writes a GPU's JSON body by hand, byte for byte what `JSON.encode` writes (sorted keys, slashes
/// unescaped, nulls spelled out), which the tests check on every kind of GPU the simulator makes.
///
/// Each scan publishes every GPU's body, and the list is those bodies joined: at 4096 GPUs the
/// generic encoder was a third of the time to the first answer (it boxes every field, then sorts
/// every object's keys). Keys here are written in their sorted order; a field added to `GPUDevice`
/// or a type inside it must be added here too, which the equality test catches.
enum GPUBodyEncoder {
    static func encode(_ gpu: GPUDevice) -> [UInt8] {
        encodeMarkingHealth(gpu).bytes
    }

    /// The body and where in it the `health` value lies, so that a change of health alone can be
    /// written into a copy of the body (`health(_:)`) without encoding the rest again: the health
    /// watch changes every GPU's `checkedAt` at each look.
    static func encodeMarkingHealth(_ gpu: GPUDevice) -> (bytes: [UInt8], health: Range<Int>) {
        var out = JSONOut()
        out.bytes.reserveCapacity(1536)
        out.raw("{\"bars\":")
        out.array(gpu.bars) { out, bar in
            out.raw("{\"index\":")
            out.int(bar.index)
            out.raw(",\"is64Bit\":")
            out.bool(bar.is64Bit)
            out.raw(",\"prefetchable\":")
            out.bool(bar.prefetchable)
            out.raw(",\"size\":")
            out.uint(bar.size)
            out.raw(",\"start\":")
            out.uint(bar.start)
            out.raw("}")
        }
        out.raw(",\"bdf\":")
        out.string(gpu.bdf)
        out.raw(",\"classCode\":")
        out.string(gpu.classCode)
        out.raw(",\"describedFrom\":")
        out.string(gpu.describedFrom.rawValue)
        out.raw(",\"deviceId\":")
        out.string(gpu.deviceId)
        out.raw(",\"deviceName\":")
        out.string(gpu.deviceName)
        out.raw(",\"driver\":")
        out.string(gpu.driver)
        out.raw(",\"driverOverride\":")
        out.string(gpu.driverOverride)
        out.raw(",\"health\":")
        let healthStart = out.bytes.count
        health(gpu.health, &out)
        let healthRange = healthStart..<out.bytes.count
        out.raw(",\"iommuGroup\":")
        if let group = gpu.iommuGroup {
            out.raw("{\"id\":")
            out.int(group.id)
            out.raw(",\"members\":")
            out.array(group.members) { out, member in
                out.raw("{\"bdf\":")
                out.string(member.bdf)
                out.raw(",\"driver\":")
                out.string(member.driver)
                out.raw("}")
            }
            out.raw("}")
        } else {
            out.raw("null")
        }
        out.raw(",\"link\":{\"currentSpeed\":")
        out.double(gpu.link.currentSpeed)
        out.raw(",\"currentWidth\":")
        out.int(gpu.link.currentWidth)
        out.raw(",\"maxSpeed\":")
        out.double(gpu.link.maxSpeed)
        out.raw(",\"maxWidth\":")
        out.int(gpu.link.maxWidth)
        out.raw("},\"memory\":")
        memory(gpu.memory, &out)
        out.raw(",\"nameSource\":")
        out.string(gpu.nameSource.rawValue)
        out.raw(",\"numaNode\":")
        out.int(gpu.numaNode)
        out.raw(",\"parentBridge\":")
        out.string(gpu.parentBridge)
        out.raw(",\"readinessProbe\":")
        out.string(gpu.readinessProbe.rawValue)
        out.raw(",\"resetMethods\":")
        out.array(gpu.resetMethods) { out, method in
            out.string(method)
        }
        out.raw(",\"revision\":")
        out.string(gpu.revision)
        out.raw(",\"state\":")
        out.string(gpu.state.rawValue)
        out.raw(",\"subsystemDeviceId\":")
        out.string(gpu.subsystemDeviceId)
        out.raw(",\"subsystemVendorId\":")
        out.string(gpu.subsystemVendorId)
        out.raw(",\"vendorId\":")
        out.string(gpu.vendorId)
        out.raw(",\"vendorName\":")
        out.string(gpu.vendorName)
        out.raw("}")
        return (out.bytes, healthRange)
    }

    /// The `health` value alone, as it appears in the body.
    static func health(_ health: GPUHealth) -> [UInt8] {
        var out = JSONOut()
        Self.health(health, &out)
        return out.bytes
    }

    private static func health(_ health: GPUHealth, _ out: inout JSONOut) {
        out.raw("{\"checkedAt\":")
        out.string(health.checkedAt)
        out.raw(",\"reasons\":")
        out.array(health.reasons) { out, finding in
            out.raw("{\"detail\":")
            out.string(finding.detail)
            out.raw(",\"reason\":")
            out.string(finding.reason.rawValue)
            out.raw(",\"since\":")
            out.string(finding.since)
            out.raw("}")
        }
        out.raw(",\"status\":")
        out.string(health.status.rawValue)
        out.raw("}")
    }

    private static func memory(_ memory: DeviceMemory?, _ out: inout JSONOut) {
        guard let memory else { return out.raw("null") }
        out.raw("{\"length\":")
        out.uint(memory.length)
        out.raw(",\"migHardwareBug\":")
        out.bool(memory.migHardwareBug)
        out.raw(",\"physicalBase\":")
        out.uint(memory.physicalBase)
        out.raw(",\"regions\":")
        out.array(memory.regions) { out, region in
            out.raw("{\"bar\":")
            out.int(region.bar)
            out.raw(",\"holeBytes\":")
            out.uint(region.holeBytes)
            out.raw(",\"length\":")
            out.uint(region.length)
            out.raw(",\"name\":")
            out.string(region.name.rawValue)
            out.raw(",\"physicalBase\":")
            out.uint(region.physicalBase)
            out.raw(",\"reportedSize\":")
            out.uint(region.reportedSize)
            out.raw("}")
        }
        out.raw(",\"source\":")
        out.string(memory.source)
        out.raw("}")
    }
}

/// The JSON output of `GPUBodyEncoder`: values spelled as FoundationEssentials' encoder spells them.
private struct JSONOut {
    var bytes: [UInt8] = []

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// `[`, each element written by `element` with commas between, `]`.
    mutating func array<Element>(_ elements: [Element], _ element: (inout JSONOut, Element) -> Void) {
        raw("[")
        for (index, item) in elements.enumerated() {
            if index > 0 { raw(",") }
            element(&self, item)
        }
        raw("]")
    }

    mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    mutating func int(_ value: Int?) {
        guard let value else { return raw("null") }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        uint(value.magnitude)
    }

    mutating func uint<T: UnsignedInteger>(_ value: T) {
        let start = bytes.count
        var rest = UInt64(value)
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        bytes[start...].reverse()
    }

    /// An integral double without a fraction (`32`), any other as Swift writes it (`2.5`).
    mutating func double(_ value: Double?) {
        guard let value else { return raw("null") }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    mutating func string(_ value: String?) {
        guard let value else { return raw("null") }
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0x00..<0x20:
                raw("\\u00")
                bytes.append(Self.hexDigit(byte >> 4))
                bytes.append(Self.hexDigit(byte & 0xF))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
