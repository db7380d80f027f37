@_spi(Internals) import Autoupdate
import Benchmark
import Foundation

/// The corpus: an app-like tree from `Scripts/make-corpus.py` (BENCH_MIB MiB, default 64), and
/// its archives made by the real tools. Generated once per run, never committed.
private let corpus: Corpus = {
    do {
        return try Corpus(mebibytes: Int(ProcessInfo.processInfo.environment["BENCH_MIB"] ?? "") ?? 64)
    } catch {
        fatalError("cannot make the benchmark corpus: \(error)")  // a harness setup failure, not an input path
    }
}()

private struct Corpus {
    let folder: URL

    init(mebibytes: Int) throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "autoupdate-benchmark-\(mebibytes)")
        self.folder = folder
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../../Scripts/make-corpus.py").standardized.path
        if !FileManager.default.fileExists(atPath: folder.appending(path: "project.zip").path) {
            try? FileManager.default.removeItem(at: folder)
            try Self.shell("python3 '\(script)' '\(folder.path)/tree' --mebibytes \(mebibytes) >/dev/null"
                + " && cd '\(folder.path)/tree' && tar cf ../project.tar . && gzip -6 -c ../project.tar > ../project.tar.gz"
                + " && bzip2 -9 -c ../project.tar > ../project.tar.bz2 && zip -qr -6 ../project.zip .")
        }
    }

    func archive(_ name: String) -> String { folder.path + "/" + name }

    static func shell(_ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "`\(command)` failed"])
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident, .mallocCountTotal],
        scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 5)

    for (name, format) in [("project.tar.gz", ArchiveFormat.tarGzip), ("project.tar.bz2", .tarBzip2)] {
        Benchmark("decode \(name)") { benchmark in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: corpus.archive(name))))
            benchmark.startMeasurement()
            blackHole(try bytes.withUnsafeBytes { try ArchiveScanner.decode($0, format: format, chunkSize: 128 << 10) })
        }
    }

    for name in ["project.tar", "project.tar.gz", "project.tar.bz2", "project.zip"] {
        Benchmark("extract \(name) from a file") { benchmark in
            let destination = FileManager.default.temporaryDirectory.appending(path: "autoupdate-benchmark-out-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: destination) }
            benchmark.startMeasurement()
            let report = try await Extractor().extract(file: corpus.archive(name), to: destination)
            benchmark.stopMeasurement()
            blackHole(report)
        }
    }
}
