// swift-tools-version: 6.1
// Throughput and peak-memory benchmarks of the Autoupdate library (ordo-one/benchmark):
// `swift package benchmark` in this folder. `make bench` (the root Makefile) runs the CLI
// against the peers instead.
import PackageDescription

let package = Package(
    name: "AutoupdateBenchmarks",
    dependencies: [
        // `autoupdate` is a symlink to `..`, so that the package's identity is the same in every
        // checkout, whatever its folder is called.
        .package(path: "autoupdate"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Throughput",
            dependencies: [
                .product(name: "Autoupdate", package: "autoupdate"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Throughput",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
