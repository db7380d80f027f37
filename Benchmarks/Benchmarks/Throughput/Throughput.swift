@_spi(Internals) import Autoupdate
import Benchmark
import Foundation

/// The corpus: an app-like tree from `Scripts/make-corpus.py` (BENCH_MIB MiB, default 32), and
/// its archives made by the real tools. Generated once per size, never committed. The recorded
/// thresholds (`Thresholds/`) are for the default size.
private let corpus: Corpus = {
    do {
        return try Corpus(mebibytes: Int(ProcessInfo.processInfo.environment["BENCH_MIB"] ?? "") ?? 32)
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

    func bytes(_ name: String) -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive(name))))
        } catch {
            fatalError("cannot read the benchmark corpus's \(name): \(error)")  // a harness setup failure
        }
    }

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

/// Where extractions write: tmpfs when there is one, so that the disk's state (its write-back,
/// ext4's skipping of recently freed inodes after each iteration's cleanup) does not time the
/// disk instead of the code; the disk rows are `make bench`'s.
private let scratch: String = {
    let shm = "/dev/shm"
    if access(shm, W_OK) == 0 {
        return shm
    }
    return FileManager.default.temporaryDirectory.path
}()

// Names without spaces or dots: `thresholds update` and `thresholds check` must agree on the
// file names they derive from them (`Throughput.<name>.p90.json`).
let benchmarks: @Sendable () -> Void = {
    // `make bench-check`: a p90 more than BENCH_TOLERANCE % (default 10) above the recorded
    // threshold (`Thresholds/`) in wall clock or mallocs, or twice that in peak memory (which
    // varies with the threads' timing: each has its own malloc arena), is a deviation. CPU time
    // is left out: the kernel counts it in 10 ms ticks, a fifth of the shortest rows. Enough
    // iterations for a p90 that is not the one slowest run: this VM's runs vary by 10–45 % at
    // the maximum of five.
    let tolerance = Double(ProcessInfo.processInfo.environment["BENCH_TOLERANCE"] ?? "") ?? 10
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .peakMemoryResident, .mallocCountTotal], warmupIterations: 2, scalingFactor: .one,
        maxDuration: .seconds(15), maxIterations: 21,
        thresholds: [
            .wallClock: BenchmarkThresholds(relative: [.p90: tolerance]),
            .mallocCountTotal: BenchmarkThresholds(relative: [.p90: tolerance]),
            .peakMemoryResident: BenchmarkThresholds(relative: [.p90: 2 * tolerance]),
        ])

    // The decoders alone, in memory (the compressed stream to its bytes).
    for (name, archive, format) in [("decode_tar_gz", "project.tar.gz", ArchiveFormat.tarGzip), ("decode_tar_bz2", "project.tar.bz2", .tarBzip2)] {
        Benchmark(name) { benchmark in
            let bytes = corpus.bytes(archive)
            benchmark.startMeasurement()
            blackHole(try bytes.withUnsafeBytes { try ArchiveScanner.decode($0, format: format, chunkSize: 128 << 10) })
        }
    }

    // The zip reader with its inflation, in memory: every check an extraction makes of the
    // archive. (The tar reader alone takes 2 ms here, too short for a stable p90: `extract_tar`
    // holds it.)
    for (name, archive, format) in [("scan_zip", "project.zip", ArchiveFormat.zip)] {
        Benchmark(name) { benchmark in
            let bytes = corpus.bytes(archive)
            benchmark.startMeasurement()
            blackHole(try bytes.withUnsafeBytes { try ArchiveScanner.scan($0, format: format, chunkSize: 128 << 10) })
        }
    }

    // Whole extractions, from a file to a new folder on tmpfs.
    for (name, archive) in [
        ("extract_tar", "project.tar"), ("extract_tar_gz", "project.tar.gz"), ("extract_tar_bz2", "project.tar.bz2"), ("extract_zip", "project.zip"),
    ] {
        Benchmark(name) { benchmark in
            let destination = scratch + "/autoupdate-benchmark-out-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: destination) }
            benchmark.startMeasurement()
            let report = try await Extractor().extract(file: corpus.archive(archive), to: destination)
            benchmark.stopMeasurement()
            blackHole(report)
        }
    }
}
