import Passthrough
import PassthroughSimulator

/// The captures in `Tests/Fixtures`, found from this file's own path (tests run from anywhere).
enum CaptureFixtures {
    static let fixturesFolder: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures"
    }()

    /// The H200 KVM guest (see its README).
    static func h200() throws -> HostCapture {
        let path = fixturesFolder + "/h200-kvm-guest/capture.json"
        return try HostCapture.decode(
            try SysfsRoot(path: "/").readBytes(String(path.dropFirst()), limit: 16 << 20))
    }
}

/// The H200 guest replayed on the simulated kernel in its own temporary folder, deleted afterwards.
@discardableResult
func withH200Host<T>(_ body: (SimulatedHost) throws -> T) throws -> T {
    let host = try SimulatedHost.createTemporary(prefix: "graceapi-h200", from: try CaptureFixtures.h200())
    defer { try? host.removeFiles() }
    return try body(host)
}
