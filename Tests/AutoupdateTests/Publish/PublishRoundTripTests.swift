@_spi(Internals) import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// Trees that find the edges of the writers and compressors: sizes around bzip2's block
/// (900,000 × k bytes, 899,981 of input per block at -9), the compressors' buffers (256 KiB out,
/// 1 MiB read), tar's 512-byte blocks (a file whose size is a multiple of 512 made bzip2 fail),
/// empty and one-byte files, long and non-ASCII names, symlinks, exec bits, empty folders.
enum PublishTree {
    enum Content: CaseIterable {
        case random, zeros, text
    }

    /// Sizes at the edges, dealt out over the seeds so that every one is covered.
    static let edgeSizes = [
        511, 513, 1024, 262_143, 262_144, 262_145, 899_980, 899_981, 899_982, 900_000, 900_001,
        1_048_575, 1_048_576, 1_048_577, 1_799_962, 1_800_000, 2_700_000,
    ]

    static func bytes(_ count: Int, _ content: Content, seed: UInt64) -> [UInt8] {
        switch content {
        case .random: return Fixtures.randomBytes(count: count, seed: seed)
        case .zeros: return [UInt8](repeating: 0, count: count)
        case .text:
            var random = SeededRandom(seed: seed)
            let words = ["update", "archive", "version", "swift", "publish", "tar", "zip", "bzip2", "block", "\n"]
            var text: [UInt8] = []
            text.reserveCapacity(count + 16)
            while text.count < count {
                text += Array(words[Int(random.next() % UInt64(words.count))].utf8) + [0x20]
            }
            return Array(text.prefix(count))
        }
    }

    /// The edge cases of one seed (`seed` in 0..<`seeds`).
    static func writeEdges(seed: Int, of seeds: Int, to root: URL) throws {
        var random = SeededRandom(seed: UInt64(seed) + 100)
        func file(_ path: String, _ contents: [UInt8], mode: Int = 0o644) throws {
            let url = root.appending(path: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(contents).write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        }
        try file("empty", [])
        try file("one-byte", [0x41])
        try file("block-512", bytes(512, .random, seed: 1))
        for (index, size) in edgeSizes.enumerated() where index % seeds == seed {
            let content = Content.allCases[Int(random.next() % 3)]
            try file("sizes/\(size)-\(content)", bytes(size, content, seed: UInt64(size)))
        }
        let modes = [0o755, 0o700, 0o644, 0o600, 0o444]
        for (index, mode) in modes.enumerated() {
            try file("bin/tool-\(index)", Array("#!/bin/sh\necho \(index)\n".utf8), mode: mode)
        }
        // ustar holds 100 bytes of name and 155 of prefix; beyond, pax records carry the path.
        let component255 = String(repeating: "n", count: 251) + ".txt"
        try file("names/\(component255)", Array("255\n".utf8))
        try file("names/" + String(repeating: "a", count: 100), Array("100\n".utf8))
        try file("names/" + String(repeating: "b", count: 101), Array("101\n".utf8))
        let deep = (0..<6).map { "folder-\($0)-" + String(repeating: "x", count: 40) }.joined(separator: "/")
        try file("names/\(deep)/deep.txt", Array("deep\n".utf8))
        try file("names/ünïcödé/日本語 with spaces.txt", Array("unicode\n".utf8))
        let manager = FileManager.default
        try manager.createDirectory(at: root.appending(path: "empty-folder"), withIntermediateDirectories: true)
        try manager.createDirectory(at: root.appending(path: "nested/empty/folders"), withIntermediateDirectories: true)
        try manager.setAttributes([.posixPermissions: 0o750], ofItemAtPath: root.appending(path: "nested/empty").path)
        try manager.createSymbolicLink(atPath: root.appending(path: "bin/link").path, withDestinationPath: "tool-0")
        try manager.createSymbolicLink(atPath: root.appending(path: "names/up").path, withDestinationPath: "../one-byte")
        try manager.createSymbolicLink(atPath: root.appending(path: "folder-link").path, withDestinationPath: "nested/empty")
        try manager.createSymbolicLink(
            atPath: root.appending(path: "long-target").path, withDestinationPath: "names/\(deep)/deep.txt")
    }

    /// Thousands of small files in a hundred folders.
    static func writeManySmall(count: Int, to root: URL) throws {
        var random = SeededRandom(seed: 7)
        for index in 0..<count {
            let folder = root.appending(path: "part-\(index % 100)")
            if index < 100 {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            }
            let size = Int(random.next() % 3000)
            try Data(bytes(size, index % 2 == 0 ? .text : .random, seed: UInt64(index))).write(
                to: folder.appending(path: "file-\(index).dat"))
        }
    }
}

/// `publish`, then extraction by every reader that knows the format: each must give the source
/// tree back exactly (names, types, bytes, permission bits, link targets).
@Suite("Publish: round trips through every reader", .ownThread)
struct PublishRoundTripTests {
    static let formats = ["project.zip", "project.tar.gz", "project.tar.bz2"]
    static let python = ProcessInfo.processInfo.environment["AUTOUPDATE_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

    /// The readers of a format, as shell commands extracting `$1` into `$2` (an existing folder),
    /// and whether they keep modes and symlinks (Python's zipfile keeps neither).
    static func readers(_ format: ArchiveFormat) -> [(name: String, command: String, keepsMetadata: Bool)] {
        let tarfile = """
            import sys, tarfile
            with tarfile.open(sys.argv[1]) as archive:
                if hasattr(tarfile, 'fully_trusted_filter'):
                    archive.extractall(sys.argv[2], filter='fully_trusted')
                else:
                    archive.extractall(sys.argv[2])
            """
        let zipfile = "import sys, zipfile\nzipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])"
        switch format {
        case .zip:
            return [
                ("unzip", "unzip -q \"$1\" -d \"$2\"", true),
                ("bsdtar", "bsdtar -xpf \"$1\" -C \"$2\"", true),
                ("Python zipfile", "\(python) -c \"$PY\" \"$1\" \"$2\"".replacingOccurrences(of: "$PY", with: zipfile), false),
            ]
        default:
            // The compressed tars are multi-member (seekable): the stream decoders must read on
            // past each member's end.
            let streamReader: [(String, String, Bool)] =
                switch format {
                case .tarGzip: [("pigz", "pigz -dc \"$1\" | tar -xpf - -C \"$2\"", true)]
                case .tarBzip2: [("bzip2", "bzip2 -dc \"$1\" | tar -xpf - -C \"$2\"", true)]
                default: []
                }
            return [
                ("GNU tar", "tar -xpf \"$1\" -C \"$2\"", true),
                ("bsdtar", "bsdtar -xpf \"$1\" -C \"$2\"", true),
                ("Python tarfile", "\(python) -c \"$PY\" \"$1\" \"$2\"".replacingOccurrences(of: "$PY", with: tarfile), true),
            ] + streamReader
        }
    }

    /// Publishes `source` as `archive` and checks every reader's extraction, ours included.
    ///
    /// Compressing and snapshotting are long synchronous work: they run on threads of their
    /// own, never on the two threads of the cooperative pool that every other test shares.
    static func checkRoundTrip(source: URL, archive: String, in work: URL, readers onlyReaders: Set<String>? = nil) async throws {
        let name = try ArchiveName(archive)
        let server = work.appending(path: "server-\(archive)")
        let result = try await onDedicatedThread {
            try Publisher.publish(source: source.path, version: try Version("1.0"), to: server.path, archive: name)
        }
        let expected = try await onDedicatedThread { try TreeSnapshot(source) }

        let ours = work.appending(path: "ours-\(archive)")
        _ = try await Extractor().extract(file: result.archive, to: ours.path)
        let differences = try await onDedicatedThread { try TreeSnapshot(ours).differences(from: expected) }
        #expect(differences.isEmpty, "our extractor, \(archive):\n\(differences.prefix(20).joined(separator: "\n"))")

        for reader in readers(name.format) where onlyReaders?.contains(reader.name) ?? true {
            let destination = work.appending(path: "\(reader.name)-\(archive)".replacingOccurrences(of: " ", with: "-"))
            try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
            let run = try await ChildProcess.run("/bin/sh", ["-c", reader.command, "sh", result.archive, destination.path])
            // unzip exits 1 on an empty zip ("zipfile is empty"), a warning.
            let emptyZipWarning = run.status == 1 && expected.nodes.isEmpty && (run.stdout + run.stderr).contains("zipfile is empty")
            #expect(run.status == 0 || emptyZipWarning, "\(reader.name) failed on \(archive): \(run.stderr)")
            let extracted = try await onDedicatedThread { try TreeSnapshot(destination) }
            let differences =
                reader.keepsMetadata
                ? extracted.differences(from: expected)
                : extracted.withoutMetadata.differences(from: expected.withoutMetadata)
            #expect(differences.isEmpty, "\(reader.name), \(archive):\n\(differences.prefix(20).joined(separator: "\n"))")
        }
    }

    @Test("edge sizes, names, links, modes and empty folders", arguments: formats, 0..<2)
    func edges(archive: String, seed: Int) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try await onDedicatedThread { try PublishTree.writeEdges(seed: seed, of: 2, to: source) }
        try await Self.checkRoundTrip(source: source, archive: archive, in: work.url)
    }

    @Test("the layout's own files are left out of the archive", arguments: formats)
    func layoutFilesLeftOut(archive: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source.appending(path: ".pyautodownloads"), withIntermediateDirectories: true)
        for name in ["version.txt", "filelist.txt", "version_check.log", ".queue", "app"] {
            try Data("\(name)\n".utf8).write(to: source.appending(path: name))
        }
        let result = try Publisher.publish(
            source: source.path, version: try Version("2.0"), to: work.url.appending(path: "server").path, archive: try ArchiveName(archive)
        )
        #expect(result.entries == 1)
        #expect(try String(contentsOf: work.url.appending(path: "server/version.txt"), encoding: .utf8) == "2.0\n")
        _ = try await Extractor().extract(file: result.archive, to: work.url.appending(path: "ours").path)
        #expect(try TreeSnapshot(work.url.appending(path: "ours")).nodes.keys.sorted() == ["app"])
    }

    @Test("refuses what clients would refuse, before writing anything")
    func refuses() throws {
        let work = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: work.url.appending(path: "src"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: work.url.appending(path: "src/out").path, withDestinationPath: "../../etc/passwd")
        #expect {
            try Publisher.publish(
                source: work.url.appending(path: "src").path, version: Version("1.0"), to: work.url.appending(path: "server").path)
        } throws: { error in
            (error as? AutoupdateError)?.message.contains("the symlink 'out' points to '../../etc/passwd', outside the folder") == true
        }
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "server").path))
    }

    @Test("thousands of small files", arguments: formats)
    func manySmallFiles(archive: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try await onDedicatedThread { try PublishTree.writeManySmall(count: 2000, to: source) }
        // The stream decoders (pigz, bzip2 -dc) read the many members of the edge trees already.
        try await Self.checkRoundTrip(
            source: source, archive: archive, in: work.url, readers: ["unzip", "bsdtar", "Python zipfile", "GNU tar", "Python tarfile"])
    }

    @Test("an empty folder publishes an archive that extracts to nothing", arguments: formats)
    func emptyTree(archive: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try await Self.checkRoundTrip(source: source, archive: archive, in: work.url)
    }

    /// The size the issue reported failing (a multiple of 512: the tar padding was an empty piece
    /// of input, and libbz2 answers an empty BZ_RUN with BZ_PARAM_ERROR).
    @Test("one 40,000,000-byte file as tar.bz2")
    func fortyMegabytes() async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try await onDedicatedThread {
            try Data(PublishTree.bytes(40_000_000, .text, seed: 40)).write(to: source.appending(path: "big.txt"))
        }
        try await Self.checkRoundTrip(source: source, archive: "project.tar.bz2", in: work.url, readers: ["GNU tar"])
    }

    /// The issue's big cases, in every format: `AUTOUPDATE_BIG_TESTS=1 make test` (a few minutes).
    @Test(
        "big trees: 40 and 48 MB random files, 40 MB of text, 16 and 64 MiB app-like trees",
        .enabled(if: ProcessInfo.processInfo.environment["AUTOUPDATE_BIG_TESTS"] == "1"),
        arguments: formats)
    func bigTrees(archive: String) async throws {
        let work = try TemporaryDirectory()
        let cases: [(String, @Sendable (URL) throws -> Void)] = [
            (
                "random-40",
                { (root: URL) in try Data(Fixtures.randomBytes(count: 40_000_000, seed: 1)).write(to: root.appending(path: "a.bin")) }
            ),
            (
                "random-48",
                { (root: URL) in try Data(Fixtures.randomBytes(count: 48_000_000, seed: 2)).write(to: root.appending(path: "a.bin")) }
            ),
            (
                "text-40",
                { (root: URL) in try Data(PublishTree.bytes(40_000_000, .text, seed: 3)).write(to: root.appending(path: "a.txt")) }
            ),
            ("app-16", { (root: URL) in try Self.appLike(mebibytes: 16, to: root) }),
            ("app-64", { (root: URL) in try Self.appLike(mebibytes: 64, to: root) }),
        ]
        for (label, write) in cases {
            let case_ = work.url.appending(path: label)
            let source = case_.appending(path: "src")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            try await onDedicatedThread { try write(source) }
            try await Self.checkRoundTrip(source: source, archive: archive, in: case_)
            try FileManager.default.removeItem(at: case_)
        }
    }

    /// An app-like tree: many small files, some large ones, sizes of every residue mod 512.
    static func appLike(mebibytes: Int, to root: URL) throws {
        var random = SeededRandom(seed: UInt64(mebibytes))
        var total = 0
        var index = 0
        while total < mebibytes << 20 {
            let size = index % 50 == 0 ? Int(random.next() % 4_000_000) : Int(random.next() % 40_000)
            let folder = root.appending(path: "lib/part-\(index % 37)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(PublishTree.bytes(size, PublishTree.Content.allCases[index % 3], seed: UInt64(index)))
                .write(to: folder.appending(path: "file-\(index)"))
            total += size
            index += 1
        }
    }
}

/// The compressors as the decoders are tested: the output must decode to the input whatever
/// pieces the input came in (empty ones included), and agree with the reference tools.
@Suite("Compressors: chunk-size invariance", .ownThread)
struct CompressorTests {
    /// Around bzip2's block and the compressors' buffers.
    static let sizes = [0, 1, 512, 899_981, 900_001, 1_048_577]

    @Test(
        "gzip and bzip2 output decodes to the input at any chunking", arguments: [ArchiveFormat.tarGzip, .tarBzip2], [0, 1, 2] as [UInt64])
    func chunkInvariance(format: ArchiveFormat, seed: UInt64) async throws {
        try await onDedicatedThread { try Self.checkChunkInvariance(format: format, seed: seed) }
    }

    private static func checkChunkInvariance(format: ArchiveFormat, seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        for size in Self.sizes {
            let input = PublishTree.bytes(size, PublishTree.Content.allCases[Int(seed) % 3], seed: UInt64(size))
            let pieces =
                seed == 0
                ? [0, 512, 0]  // tar's rhythm, with empty pieces between
                : (0..<20).map { _ in Int(random.next() % 3) == 0 ? 0 : Int(random.next() % 300_000) }
            let compressed = try input.withUnsafeBytes { try ArchiveScanner.compressed($0, format: format, pieceSizes: pieces) }
            let whole = try input.withUnsafeBytes { try ArchiveScanner.compressed($0, format: format, pieceSizes: []) }
            for output in [compressed, whole] {
                let decoded = try output.withUnsafeBytes { try ArchiveScanner.decoded($0, format: format, chunkSize: 4099) }
                #expect(decoded == input, "\(format), \(size) bytes in pieces \(pieces)")
            }
        }
    }

    @Test("gzip -dc and bzip2 -dc read what the compressors write", arguments: [ArchiveFormat.tarGzip, .tarBzip2])
    func referenceDecoders(format: ArchiveFormat) async throws {
        let work = try TemporaryDirectory()
        let input = PublishTree.bytes(1_900_000, .text, seed: 9) + Fixtures.randomBytes(count: 300_000, seed: 9)
        let compressed = try input.withUnsafeBytes { try ArchiveScanner.compressed($0, format: format, pieceSizes: [0, 512, 4096, 0, 1]) }
        try Data(compressed).write(to: work.url.appending(path: "c"))
        try await shell("\(format == .tarGzip ? "gzip" : "bzip2") -dc < c > d", in: work.url)
        #expect(Array(try Data(contentsOf: work.url.appending(path: "d"))) == input)
    }

    @Test("the compress fuzz target's regressions replay")
    func fuzzTarget() async throws {
        let work = try TemporaryDirectory()
        // Inputs of the harness's form: a pattern byte, then the data.
        for (index, size) in [0, 1, 511, 513, 70_000].enumerated() {
            try Data([UInt8(index * 40)] + Fixtures.randomBytes(count: size, seed: UInt64(size))).write(
                to: work.url.appending(path: "input-\(index)"))
        }
        let result = try await ChildProcess.run(BuiltProducts.directory.appending(path: "AutoupdateFuzz").path, ["compress", work.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("replayed 5 inputs"))
    }
}

extension TreeSnapshot {
    /// What a reader without modes or symlinks (Python's zipfile) can give back: a symlink
    /// becomes a file holding its target, and permission bits are not compared.
    var withoutMetadata: TreeSnapshot {
        TreeSnapshot(
            nodes: nodes.mapValues { node in
                switch node {
                case .file(_, let bytes): .file(mode: 0, bytes: bytes)
                case .directory: .directory(mode: 0)
                case .symlink(let target): .file(mode: 0, bytes: Data(target.utf8))
                }
            })
    }
}
