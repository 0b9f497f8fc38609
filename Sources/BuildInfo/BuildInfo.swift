/// What a binary says about itself: `--version`, `GET /healthz` and the `graceapi_build_info` metric.
public enum BuildInfo {
    /// The release, the one place it is written (openapi.yaml's `info.version` follows it; a test
    /// checks they agree).
    public static let version = "0.1.0"

    /// The git commit the binary was built from, baked in by the SourceRevision plugin; "unknown"
    /// for a build outside a git checkout.
    public static let revision = sourceRevision

    /// `NAME 0.1.0 (abc1234)`: what `--version` prints.
    public static func versionLine(_ name: String) -> String {
        "\(name) \(version) (\(revision))"
    }
}
