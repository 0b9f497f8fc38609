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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
        // libmicrohttpd's TLS library: token digests and random bytes, client certificates.
        .systemLibrary(
            name: "CGnuTLS", pkgConfig: "gnutls",
            providers: [.apt(["libgnutls28-dev"])]),

        // The version and the source revision, baked in at build time by the SourceRevision plugin.
        .target(name: "BuildInfo", plugins: ["SourceRevision"]),
        .plugin(name: "SourceRevision", capability: .buildTool()),

        // The host: sysfs, config space, libpci, the simulated kernel. No HTTP, no SQL.
        .target(
            name: "Passthrough",
            dependencies: ["CPCI"]),
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
                "BuildInfo", "GraceHTTP", "CHTTP", "Passthrough", "Store",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "graced",
            dependencies: [
                "BuildInfo", "GraceAPI", "GraceHTTP", "Passthrough", "Store",
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
                "GraceAPI", "GraceHTTP", "GraceClient", "Passthrough", "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/Sources/grace-bench"),

        .testTarget(name: "PassthroughTests", dependencies: ["Passthrough"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(
            name: "GraceAPITests",
            dependencies: ["BuildInfo", "GraceAPI", "GraceHTTP", "GraceClient", "Passthrough", "Store"]),
    ]
)
