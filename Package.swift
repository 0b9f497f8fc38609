// swift-tools-version: 6.1
import PackageDescription

// Every target builds in Swift 6 language mode (the tools version's default), so complete
// concurrency checking is on everywhere.
let package = Package(
    name: "GraceAPI",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "graced", targets: ["graced"]),
        .executable(name: "gracectl", targets: ["gracectl"]),
        .library(name: "GraceAPI", targets: ["GraceAPI"]),
        .library(name: "GraceHTTP", targets: ["GraceHTTP"]),
        // For the fuzz package, whose router target runs the service on a simulated host.
        .library(name: "GraceSimulation", targets: ["GraceSimulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Errno (and its names) for what the kernel answers at the sysfs seam.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // Prometheus text for GET /metrics: swift-prometheus's registry (no Foundation), and the
        // swift-metrics API it implements, so libraries instrumented with swift-metrics can report
        // into the application's own registry.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian, each behind a module map and a small shim header.
        .systemLibrary(
            name: "CHTTP", pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(
            name: "CPCI", pkgConfig: "libpci",
            providers: [.apt(["libpci-dev"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // glibc's malloc tuning (malloc.h, which the Glibc module leaves out), for HeapTrim.
        .systemLibrary(name: "CMalloc"),
        // libmicrohttpd's TLS library: token digests and random bytes, client certificates.
        .systemLibrary(
            name: "CGnuTLS", pkgConfig: "gnutls",
            providers: [.apt(["libgnutls28-dev"])]),

        // The version and the source revision, baked in at build time by the SourceRevision plugin.
        .target(name: "BuildInfo", plugins: ["SourceRevision"]),
        .plugin(name: "SourceRevision", capability: .buildTool()),

        // The host: sysfs, config space, libpci, host captures. No HTTP, no SQL, no simulator.
        .target(
            name: "Passthrough",
            dependencies: ["CPCI", .product(name: "SystemPackage", package: "swift-system")]),
        // The simulated host and kernel (`graced --simulate`, the tests, the benchmarks), and the
        // tree a capture replays into. Production code paths never import it.
        .target(
            name: "PassthroughSimulator",
            dependencies: ["Passthrough", .product(name: "SystemPackage", package: "swift-system")]),
        // SQLite through our own small wrapper. No sysfs.
        .target(
            name: "Store",
            dependencies: ["CSQLite"]),
        // The edge: the HTTP server on libmicrohttpd, the head gate, the edge checks, callers and
        // their credentials, problems, strict JSON bodies. It knows nothing of GPUs, jobs or the
        // store: the compiler rejects any reach from the edge back into the domain.
        .target(
            name: "GraceHTTP",
            dependencies: ["CHTTP", "CGnuTLS"]),
        // The service: routes, jobs, inventory, events, metrics, snapshots.
        .target(
            name: "GraceAPI",
            dependencies: [
                "BuildInfo", "GraceHTTP", "CHTTP", "CMalloc", "Passthrough", "Store",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The contract served at GET /openapi.yaml: a symlink to the root openapi.yaml, whose
            // bytes SwiftPM compiles into the module, so an edit needs no step and graced reads no
            // file at run time.
            resources: [.embedInCode("Contract/openapi.yaml")]),
        // The service over a simulated host: the simulator's fault routes, added through the
        // service host's route extensions so GraceAPI never sees a simulator type.
        .target(
            name: "GraceSimulation",
            dependencies: ["GraceAPI", "Passthrough", "PassthroughSimulator"]),
        .executableTarget(
            name: "graced",
            dependencies: [
                "BuildInfo", "GraceAPI", "GraceHTTP", "GraceSimulation", "Passthrough",
                "PassthroughSimulator",
                "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The command-line client, and the small blocking HTTP(S) client it shares with the benchmarks
        // (TLS through GnuTLS, the library graced's listeners use).
        .target(name: "GraceClient", dependencies: ["CGnuTLS"]),
        .executableTarget(
            name: "gracectl",
            dependencies: [
                "BuildInfo", "GraceClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Benchmarks, with their figures in bench/RESULTS.md.
        .executableTarget(
            name: "grace-bench",
            dependencies: [
                "GraceAPI", "GraceHTTP", "GraceClient", "GraceSimulation", "Passthrough",
                "PassthroughSimulator",
                "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/Sources/grace-bench"),

        // What the test targets share: threads off the cooperative pool, temporary folders, a
        // reproducible random generator.
        .target(name: "GraceTestSupport", path: "Tests/GraceTestSupport"),
        .testTarget(
            name: "PassthroughTests",
            dependencies: [
                "GraceTestSupport", "Passthrough", "PassthroughSimulator",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(name: "StoreTests", dependencies: ["GraceTestSupport", "Store"]),
        .testTarget(
            name: "GraceAPITests",
            dependencies: [
                "BuildInfo", "GraceAPI", "GraceHTTP", "GraceClient", "GraceSimulation", "GraceTestSupport",
                "Passthrough", "PassthroughSimulator", "Store",
            ]),
    ]
)

// Every Swift target spells an existential `any P` (the upcoming ExistentialAny), so that a boxed
// protocol value, and its cost, is visible where it is used.
for target in package.targets where target.type != .system && target.type != .plugin {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("ExistentialAny")]
}
