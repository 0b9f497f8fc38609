// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for GraceAPI's parsers, one executable each. A package of its own so that the
// service's build never carries fuzzing flags: `scripts/fuzz.sh` builds it with
// `--sanitize fuzzer --sanitize address` and coverage flags for every module, the root package's
// included, and runs each target for a bounded time over its seed corpus in `corpus/<name>/`.
//
// The targets reach internal parsers with `@testable import`, which a debug build allows. The
// root package's products are the GraceAPI, GraceHTTP and GraceSimulation libraries; Passthrough,
// PassthroughSimulator, Store and Logging come with them.
let targets = [
    "fuzz-bdf", "fuzz-config-space", "fuzz-resource-file", "fuzz-request-body", "fuzz-host-capture",
    "fuzz-request-head", "fuzz-router",
]

let package = Package(
    name: "GraceAPIFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "GraceAPI", path: "..")
    ],
    targets: targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                .product(name: "GraceAPI", package: "GraceAPI"),
                .product(name: "GraceHTTP", package: "GraceAPI"),
                .product(name: "GraceSimulation", package: "GraceAPI"),
            ],
            // libFuzzer brings `main`; a target only defines `LLVMFuzzerTestOneInput`.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
)
