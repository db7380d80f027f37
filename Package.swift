// swift-tools-version: 6.2
// 6.2 for `treatAllWarnings(as: .error)`: zero warnings without `unsafeFlags`, which would
// stop other packages from depending on this one.

import PackageDescription

/// Settings every target of ours compiles with: Swift 6 mode (the package default),
/// complete strict concurrency, the upcoming features STYLE.md asks for, and warnings as errors.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "autoupdate",
    products: [
        .library(name: "Autoupdate", targets: ["Autoupdate"]),
        .executable(name: "autoupdate", targets: ["AutoupdateCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Documentation only: `swift package generate-documentation` (`make docs`).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // Test-only: the HTTPS test server.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // C libraries behind header-only shims. Names carry our prefix so they never clash
        // with another package's `CZlib` (ZIPFoundation declares one) in a client's build graph.
        .systemLibrary(
            name: "CAutoupdateCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CAutoupdateZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Debian's libbz2-dev ships no .pc file: the modulemap links "bz2" itself.
        .systemLibrary(
            name: "CAutoupdateBzip2",
            providers: [.apt(["libbz2-dev"])]
        ),
        // Linux calls that need _GNU_SOURCE (syncfs); header-only, nothing to link.
        .systemLibrary(name: "CAutoupdateSystem"),
        .systemLibrary(
            name: "CAutoupdateCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CAutoupdateSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(
            name: "Autoupdate",
            dependencies: [
                "CAutoupdateCurl",
                "CAutoupdateZlib",
                "CAutoupdateBzip2",
                "CAutoupdateCrypto",
                "CAutoupdateSodium",
                "CAutoupdateSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Not named `autoupdate`: `Sources/autoupdate` and `Sources/Autoupdate` collide on a
        // case-insensitive disk. The product (the binary) is still `autoupdate`.
        .executableTarget(
            name: "AutoupdateCLI",
            dependencies: [
                "Autoupdate",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The README's and the documentation's examples, compiled with everything else.
        .executableTarget(
            name: "AutoupdateExamples",
            dependencies: [
                "Autoupdate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Examples/AutoupdateExamples",
            swiftSettings: strictSettings
        ),
        .target(
            name: "AutoupdateTestSupport",
            dependencies: [
                "Autoupdate",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/AutoupdateTestSupport",
            // Read from the source tree by path (tests, demo and bench all run from it).
            exclude: ["Certificates"],
            swiftSettings: strictSettings
        ),
        // Test traits (`.ownThread`), apart from the support code, which the helper executable links.
        .target(
            name: "AutoupdateTestTraits",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            path: "Tests/AutoupdateTestTraits",
            swiftSettings: strictSettings
        ),
        // The HTTPS test server as a process (`make demo`, `make bench`), and probes that must run
        // in a process of their own (peak memory of a download).
        .executableTarget(
            name: "AutoupdateTestHelper",
            dependencies: [
                "Autoupdate",
                "AutoupdateTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/AutoupdateTestHelper",
            swiftSettings: strictSettings
        ),
        // libFuzzer targets for the readers (`make fuzz`); built normally, it replays inputs.
        .executableTarget(
            name: "AutoupdateFuzz",
            dependencies: ["Autoupdate"],
            path: "Tests/AutoupdateFuzz",
            exclude: ["run.sh"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AutoupdateTests",
            dependencies: [
                "Autoupdate", "AutoupdateTestSupport", "AutoupdateTestTraits", "AutoupdateTestHelper", "AutoupdateFuzz",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // Inputs found by `make fuzz`, replayed by a test through the harness.
            exclude: ["Archive/FuzzRegressions"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AutoupdateCLITests",
            // The examples: built by `make test` so that they compile, and checked against the README.
            dependencies: ["AutoupdateCLI", "AutoupdateTestSupport", "AutoupdateTestTraits", "AutoupdateExamples"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
