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
                "CAutoupdateSodium",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
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
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "AutoupdateTestSupport",
            dependencies: [
                "Autoupdate",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/AutoupdateTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AutoupdateTests",
            dependencies: ["Autoupdate", "AutoupdateTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AutoupdateCLITests",
            dependencies: ["AutoupdateCLI", "AutoupdateTestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
