@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

/// What a reader reported, in a form that can be compared: entries with their whole content.
struct ReadEntry: Equatable {
    let entry: ArchiveEntry
    var content: [UInt8] = []
}

/// Feeds `bytes` to a reader split at seeded random boundaries (1-byte pieces when `seed` is 0).
func pieces(of bytes: [UInt8], seed: UInt64) -> [ArraySlice<UInt8>] {
    var random = SeededRandom(seed: seed)
    var result: [ArraySlice<UInt8>] = []
    var index = 0
    while index < bytes.count {
        let size = seed == 0 ? 1 : Int.random(in: 1...20_000, using: &random)
        result.append(bytes[index..<min(index + size, bytes.count)])
        index += size
    }
    return result
}

func readTar(_ bytes: [UInt8], seed: UInt64) throws -> [ReadEntry] {
    var reader = TarReader()
    var entries: [ReadEntry] = []
    let handle: (ArchiveEvent) throws -> Void = { event in
        switch event {
        case .entry(let entry): entries.append(ReadEntry(entry: entry))
        case .data(let data): entries[entries.count - 1].content += data
        case .hole(let count): entries[entries.count - 1].content += [UInt8](repeating: 0, count: Int(count))
        case .deflated: Issue.record("a tar reader handed on a deflated entry")
        case .entryEnd: break
        }
    }
    for piece in pieces(of: bytes, seed: seed) {
        try piece.withUnsafeBytes { try reader.read($0, handle) }
    }
    try reader.finish()
    return entries
}

func readZip(_ bytes: [UInt8], seed: UInt64, spoolFolder: String) throws -> (entries: [ReadEntry], modes: [UInt32?]) {
    let folder = open(spoolFolder, O_RDONLY | O_DIRECTORY)
    defer { close(folder) }
    // Odd seeds hand small deflated entries on whole (as an extraction on several cores does),
    // even ones inflate every entry in the reader: both paths must read the same archive.
    let handsOn = seed % 2 == 1
    let reader = ZipReader(makeSpool: { try SpoolFile(in: folder) }, handsOnDeflatedUpTo: handsOn ? InflatePool.entryLimit : 0)
    let inflater = try RawDeflateDecoder()
    var entries: [ReadEntry] = []
    let handle: (ArchiveEvent) throws -> Void = { event in
        switch event {
        case .entry(let entry): entries.append(ReadEntry(entry: entry))
        case .data(let data): entries[entries.count - 1].content += data
        case .hole(let count): entries[entries.count - 1].content += [UInt8](repeating: 0, count: Int(count))
        case .deflated(let data): try data.inflate(with: inflater) { entries[entries.count - 1].content += $0 }
        case .entryEnd: break
        }
    }
    for piece in pieces(of: bytes, seed: seed) {
        try piece.withUnsafeBytes { try reader.read($0, handle) }
    }
    try reader.finish(handle)
    return (entries, reader.centralRecords.map(\.unixMode))
}

@Suite("Readers: chunk invariance")
struct ReaderChunkInvarianceTests {
    static func archive(_ command: String) async throws -> (bytes: [UInt8], folder: TemporaryDirectory) {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source, small: true)
        try await shell(command, in: work.url)
        return (Array(try Data(contentsOf: work.url.appending(path: "out"))), work)
    }

    @Test(
        "tar: the same entries and bytes at any chunking",
        arguments: ["tar --format=gnu -cf out -C src .", "tar --format=posix -cf out -C src ."])
    func tar(command: String) async throws {
        let (bytes, _) = try await Self.archive(command)
        let whole = try await onDedicatedThread { try readTar(bytes, seed: 1_000_000) }
        #expect(whole.count > 10)
        #expect(
            whole.contains { $0.entry.path.hasSuffix(String(repeating: "very-long-file-name-", count: 9) + ".txt") }, "a long name survives"
        )
        for seed in [0, 1, 2, 3] as [UInt64] {
            let chunked = try await onDedicatedThread { try readTar(bytes, seed: seed) }
            #expect(chunked == whole, "seed \(seed)")
        }
    }

    @Test(
        "zip: the same entries and bytes at any chunking, streamed or spooled",
        arguments: [
            "cd src && zip -qry ../out.zip . && mv ../out.zip ../out",
            "cd src && zip -qr - . | cat > ../out",
            "${AUTOUPDATE_PYTHON:-python3} -c \"import zipfile, sys\nz = zipfile.ZipFile(sys.stdout.buffer, 'w')\nz.writestr('a.txt', 'stored')\nz.writestr(zipfile.ZipInfo('b.txt'), 'also stored')\nz.writestr('c.txt', 'x' * 5000, compress_type=zipfile.ZIP_DEFLATED)\nz.close()\" | cat > out",
        ])
    func zip(command: String) async throws {
        let (bytes, folder) = try await Self.archive(command)
        let spoolFolder = folder.path
        let whole = try await onDedicatedThread { try readZip(bytes, seed: 1_000_000, spoolFolder: spoolFolder) }
        #expect(!whole.entries.isEmpty)
        for seed in [0, 1, 2, 3] as [UInt64] {
            let chunked = try await onDedicatedThread { try readZip(bytes, seed: seed, spoolFolder: spoolFolder) }
            #expect(chunked.entries == whole.entries, "seed \(seed)")
            #expect(chunked.modes == whole.modes, "seed \(seed)")
        }
    }
}

@Suite("Extractor: seeded mutation fuzzing")
struct MutationFuzzTests {
    @Test("mutated archives fail cleanly or extract, never crash or escape", arguments: ["a.tar.gz", "a.zip", "a.tar", "a.tar.bz2"])
    func mutations(name: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source.appending(path: "dir"), withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: source.appending(path: "dir/a.txt"))
        try Data(Fixtures.randomBytes(count: 3000, seed: 3)).write(to: source.appending(path: "b.bin"))
        try FileManager.default.createSymbolicLink(atPath: source.appending(path: "link").path, withDestinationPath: "dir/a.txt")
        let command =
            switch name {
            case "a.zip": "cd src && zip -qry ../a.zip ."
            case "a.tar": "tar -cf a.tar -C src ."
            case "a.tar.bz2": "tar -cjf a.tar.bz2 -C src ."
            default: "tar -czf a.tar.gz -C src ."
            }
        try await shell(command, in: work.url)
        let original = Array(try Data(contentsOf: work.url.appending(path: name)))
        let seed: UInt64 = 0xA0_70_0D_A7
        var random = SeededRandom(seed: seed)
        let sandbox = try ExtractionSandbox()
        for iteration in 0..<150 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[position] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes[position] ^= 1 << UInt8.random(in: 0...7, using: &random)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
                default: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...64, using: &random)))
                }
            }
            let archive = sandbox.folder.url.appending(path: name)
            try Data(bytes).write(to: archive)
            do {
                _ = try await Extractor(configuration: ExtractionConfiguration(maxBytes: 50_000_000))
                    .extract(file: archive.path, to: sandbox.destination.path)
                try FileManager.default.removeItem(at: sandbox.destination)
            } catch is AutoupdateError {
                #expect(!FileManager.default.fileExists(atPath: sandbox.destination.path), "seed \(seed) iteration \(iteration) left files")
            }
            #expect(try sandbox.changesOutsideDestination() == ["only here: \(name)"], "seed \(seed) iteration \(iteration)")
        }
    }
}

@Suite("Extractor: streaming input")
struct ExtractorStreamingTests {
    @Test("extracts from an async sequence of chunks")
    func streams() async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source)
        try await shell("tar -czf a.tgz -C src .", in: work.url)
        let bytes = Array(try Data(contentsOf: work.url.appending(path: "a.tgz")))
        let chunks = pieces(of: bytes, seed: 5).map(Array.init)
        let stream = AsyncStream<[UInt8]> { continuation in
            chunks.forEach { continuation.yield($0) }
            continuation.finish()
        }
        let report = try await Extractor().extract(stream, format: .tarGzip, to: work.url.appending(path: "out").path)
        #expect(report.hardlinks == 1)
        let differences = try TreeSnapshot(work.url.appending(path: "out")).differences(from: TreeSnapshot(source))
        #expect(differences.isEmpty, "\(differences)")
    }

    /// Yields chunks until it is asked for `signalAt`, then signals and waits (cancellably)
    /// without yielding more.
    struct StallingInput: AsyncSequence, Sendable {
        let chunks: [[UInt8]]
        let signalAt: Int
        let reached: AsyncStream<Void>.Continuation

        struct AsyncIterator: AsyncIteratorProtocol {
            let input: StallingInput
            var index = 0

            mutating func next() async throws -> [UInt8]? {
                defer { index += 1 }
                if index == input.signalAt {
                    input.reached.yield()
                    // Awaits the task's cancellation (the event this input exists for); bounded.
                    try? await Task.sleep(for: .seconds(600))
                    return nil
                }
                return index < input.chunks.count ? input.chunks[index] : nil
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(input: self) }
    }

    @Test("cancelling stops the extraction and removes what it created")
    func cancellation() async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        for index in 0..<20 {
            try Data(Fixtures.randomBytes(count: 1 << 20, seed: UInt64(index))).write(to: source.appending(path: "f\(index).bin"))
        }
        try await shell("tar -cf a.tar -C src .", in: work.url)
        let bytes = Array(try Data(contentsOf: work.url.appending(path: "a.tar")))
        let chunks = stride(from: 0, to: bytes.count, by: 1 << 20).map { Array(bytes[$0..<min($0 + (1 << 20), bytes.count)]) }
        let reached = AsyncStream<Void>.makeStream()
        let destination = work.url.appending(path: "out")
        // The feed holds at most 4 MiB: asking for chunk 10 means the worker has extracted files.
        let input = StallingInput(chunks: chunks, signalAt: 10, reached: reached.continuation)
        let task = Task {
            try await Extractor().extract(input, format: .tar, to: destination.path)
        }
        var signals = reached.stream.makeAsyncIterator()
        await signals.next()
        #expect(
            FileManager.default.fileExists(atPath: destination.appending(path: "f0.bin").path),
            "files were extracted before the cancellation")
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(!FileManager.default.fileExists(atPath: destination.path), "rolled back")
    }

    @Test("an input that fails rolls the extraction back and reports the input's error")
    func inputFailure() async throws {
        let work = try TemporaryDirectory()
        struct Broken: Error {}
        let stream = AsyncThrowingStream<[UInt8], any Error> { continuation in
            var builder = TarBuilder()
            builder.entry("a.txt", content: Array("hello".utf8))
            continuation.yield(builder.bytes)
            continuation.finish(throwing: Broken())
        }
        do {
            _ = try await Extractor().extract(stream, format: .tar, to: work.url.appending(path: "out").path)
            Issue.record("expected the input's error")
        } catch is Broken {
        }
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "out").path))
    }
}

@Suite("Fuzzing regressions")
struct FuzzRegressionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "FuzzRegressions")

    @Test("inputs found by make fuzz are refused or read, never crash", arguments: ["tar", "tgz", "tbz2", "zip", "gzip", "bzip2"])
    func replay(target: String) async throws {
        let inputs = Self.folder.appending(path: target)
        let count = try FileManager.default.contentsOfDirectory(atPath: inputs.path).count
        let result = try await ChildProcess.run(BuiltProducts.directory.appending(path: "AutoupdateFuzz").path, [target, inputs.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "replayed \(count) inputs\n")
        #expect(count > 0)
    }
}

/// The one value both zip paths check entries with.
@Suite("Zip entry verifier")
struct ZipEntryVerifierTests {
    static let data: [UInt8] = Array("hello, zip".utf8)

    static func fed(declared: ZipEntryVerifier.Declared?, bytes: [UInt8] = data) throws -> ZipEntryVerifier {
        var verifier = ZipEntryVerifier(name: "a.txt", offset: 0, method: 0, declared: declared)
        verifier.consumed(bytes.count)
        try bytes.withUnsafeBytes { try verifier.produced($0) }
        return verifier
    }

    @Test("declared values: a match passes; a wrong CRC, a short entry or an overlong one fails, naming the entry")
    func declared() throws {
        let crc = try Self.fed(declared: nil).summary.crc
        let good = ZipEntryVerifier.Declared(crc: crc, compressedSize: 10, uncompressedSize: 10)
        try Self.fed(declared: good).verifyData()
        var wrongCRC = good
        wrongCRC.crc ^= 1
        #expect(throws: AutoupdateError.self) { try Self.fed(declared: wrongCRC).verifyData() }
        var longer = good
        longer.uncompressedSize = 11
        let short = #expect(throws: AutoupdateError.self) { try Self.fed(declared: longer).verifyData() }
        #expect(short?.message.contains("'a.txt' has 10 bytes, not its declared 11") == true)
        var shorter = good
        shorter.uncompressedSize = 9
        let over = #expect(throws: AutoupdateError.self) { _ = try Self.fed(declared: shorter) }
        #expect(over?.code == .sizeLimitExceeded)
    }

    @Test("a data descriptor must agree with the data (streamed) or with the central directory (spooled)")
    func descriptor() throws {
        let streamed = try Self.fed(declared: nil)
        let summary = streamed.summary
        let matching = ZipEntryVerifier.Declared(crc: summary.crc, compressedSize: 10, uncompressedSize: 10)
        try streamed.verify(descriptor: matching)
        var badSize = matching
        badSize.compressedSize = 12
        let error = #expect(throws: AutoupdateError.self) { try streamed.verify(descriptor: badSize) }
        #expect(error?.message.contains("disagrees with its data") == true)
        let spooled = try Self.fed(declared: matching)
        let central = #expect(throws: AutoupdateError.self) { try spooled.verify(descriptor: badSize) }
        #expect(central?.message.contains("disagrees with the central directory") == true)
    }
}
