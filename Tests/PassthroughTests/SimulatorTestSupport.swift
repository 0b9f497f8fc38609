import Testing

@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// A demo host in its own temporary folder; every test gets a fresh one and deletes it.
@discardableResult
func withDemoHost<T>(_ body: (SimulatedHost) throws -> T) throws -> T {
    let host = try SimulatedHost.createTemporary(prefix: "graceapi-simtest")
    defer { try? host.removeFiles() }
    return try body(host)
}

@discardableResult
func withDemoHostAsync<T>(_ body: (SimulatedHost) async throws -> T) async throws -> T {
    let host = try SimulatedHost.createTemporary(prefix: "graceapi-simtest")
    defer { try? host.removeFiles() }
    return try await body(host)
}

func bdf(_ text: String) -> BDF { BDF(text)! }

/// Milliseconds on the monotonic clock.
func nowMs() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) * 1000 + Double(time.tv_nsec) / 1_000_000
}

/// Polls every few milliseconds until the condition holds; returns the elapsed time, or nil when it
/// still does not hold at the deadline. The condition is looked at once more after the deadline has
/// passed: a poll starved of the cooperative pool past it must not miss a state that came in time.
func waitUntil(timeoutMs: Double, _ condition: () throws -> Bool) async throws -> Double? {
    let start = nowMs()
    while nowMs() - start < timeoutMs {
        if try condition() { return nowMs() - start }
        try await Task.sleep(for: .milliseconds(5))
    }
    return try condition() ? nowMs() - start : nil
}

/// Polls until the condition holds, with a minute's deadline that only guards against a hang;
/// returns the elapsed time, or nil after the minute.
func waitUntil(_ condition: () throws -> Bool) async throws -> Double? {
    try await waitUntil(timeoutMs: 60_000, condition)
}

/// A minimal test-local config space reader: walks the chains by the spec, independent of the builder.
struct ConfigReader {
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    init(_ root: SysfsRoot, _ device: BDF) throws {
        bytes = try root.readBytes(root.device(device) + "/config")
    }

    func u8(_ offset: Int) -> UInt8 { bytes[offset] }
    func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
    func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) | UInt32(u16(offset + 2)) << 16 }

    /// (id, offset) of each standard capability, following 0x34 while the status bit says there is a list.
    var capabilities: [(id: UInt8, offset: Int)] {
        guard u16(0x06) & 0x10 != 0 else { return [] }
        var result: [(UInt8, Int)] = []
        var offset = Int(u8(0x34) & 0xFC)
        while offset >= 0x40 && result.count < 48 {
            result.append((u8(offset), offset))
            offset = Int(u8(offset + 1) & 0xFC)
        }
        return result
    }

    /// (id, version, offset) of each extended capability from 0x100.
    var extendedCapabilities: [(id: UInt16, version: UInt8, offset: Int)] {
        var result: [(UInt16, UInt8, Int)] = []
        var offset = 0x100
        while offset >= 0x100 && result.count < 64 {
            let header = u32(offset)
            if header == 0 || header == 0xFFFF_FFFF { break }
            result.append((UInt16(header & 0xFFFF), UInt8(header >> 16 & 0xF), offset))
            offset = Int(header >> 20) & 0xFFC
        }
        return result
    }

    func capability(_ id: UInt8) -> Int? { capabilities.first { $0.id == id }?.offset }

    /// The offset of the DVSEC with this vendor and id, as `pci_find_dvsec_capability` finds it.
    func dvsec(vendor: UInt16, id: UInt16) -> Int? {
        extendedCapabilities.first { cap in
            cap.id == 0x23 && u16(cap.offset + 4) == vendor && u16(cap.offset + 8) == id
        }?.offset
    }
}

/// Runs a shell command and returns its exit status and combined output.
func run(_ command: String) -> (status: Int32, output: String) {
    guard let pipe = popen(command + " 2>&1", "r") else { return (-1, "") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, pipe) }
        if count == 0 { break }
        output.append(contentsOf: buffer[0..<count])
    }
    let status = pclose(pipe)
    return (status, String(decoding: output, as: UTF8.self))
}
