import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// Every hostile archive must fail with a clear error naming the entry, write nothing outside the
/// destination, and leave no trace inside it.
@Suite("Extractor: hostile archives")
struct HostileArchiveTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let fileName: String
        let bytes: [UInt8]
        let code: AutoupdateError.Code
        let fragment: String
        var testDescription: String { label }
    }

    static func tar(_ build: (inout TarBuilder) -> Void) -> [UInt8] {
        var builder = TarBuilder()
        build(&builder)
        builder.end()
        return builder.bytes
    }

    static func zip(_ entries: [ZipBuilder.Entry]) -> [UInt8] {
        var builder = ZipBuilder()
        builder.entries = entries
        return builder.build()
    }

    static let evil = Array("evil\n".utf8)

    static let cases: [Case] = [
        Case(
            label: "tar: ../ traversal", fileName: "a.tar",
            bytes: tar { $0.entry("../outside.txt", content: evil) }, code: .unsafeEntry, fragment: "'../outside.txt' contains '..'"),
        Case(
            label: "tar: traversal in the middle", fileName: "a.tar",
            bytes: tar { $0.entry("a/../../outside.txt", content: evil) }, code: .unsafeEntry, fragment: "'a/../../outside.txt'"),
        Case(
            label: "tar: absolute path", fileName: "a.tar",
            bytes: tar { $0.entry("/tmp/autoupdate-evil", content: evil) }, code: .unsafeEntry,
            fragment: "'/tmp/autoupdate-evil' has an absolute path"),
        Case(
            label: "tar: symlink then write through it", fileName: "a.tar",
            bytes: tar {
                $0.entry("link", type: "2", linkTarget: "../etc")
                $0.entry("link/passwd", content: evil)
            },
            code: .unsafeEntry, fragment: "'link/passwd' would write through the symlink 'link'"),
        Case(
            label: "tar: symlink inside, then write through it", fileName: "a.tar",
            bytes: tar {
                $0.entry("real/", type: "5")
                $0.entry("link", type: "2", linkTarget: "real")
                $0.entry("link/x", content: evil)
            },
            code: .unsafeEntry, fragment: "'link/x' would write through the symlink 'link'"),
        Case(
            label: "tar: symlink leaving the destination", fileName: "a.tar",
            bytes: tar { $0.entry("up", type: "2", linkTarget: "../outside.txt") }, code: .unsafeEntry,
            fragment: "symlink 'up' points to '../outside.txt'"),
        Case(
            label: "tar: absolute symlink", fileName: "a.tar",
            bytes: tar { $0.entry("etc", type: "2", linkTarget: "/etc") }, code: .unsafeEntry, fragment: "symlink 'etc' points to '/etc'"),
        Case(
            label: "tar: two symlinks that escape together", fileName: "a.tar",
            bytes: tar {
                $0.entry("here", type: "2", linkTarget: ".")
                $0.entry("out", type: "2", linkTarget: "here/../outside.txt")
            },
            code: .unsafeEntry, fragment: "symlink 'out' points to 'here/../outside.txt'"),
        Case(
            label: "tar: symlink loop", fileName: "a.tar",
            bytes: tar {
                $0.entry("a", type: "2", linkTarget: "b/x")
                $0.entry("b", type: "2", linkTarget: "a/y")
            },
            code: .unsafeEntry, fragment: "leaves the destination"),
        Case(
            label: "tar: hard link to an outside file", fileName: "a.tar",
            bytes: tar { $0.entry("h", type: "1", linkTarget: "/etc/passwd") }, code: .unsafeEntry,
            fragment: "hard link 'h' points to '/etc/passwd'"),
        Case(
            label: "tar: hard link up and out", fileName: "a.tar",
            bytes: tar { $0.entry("h", type: "1", linkTarget: "../outside.txt") }, code: .unsafeEntry, fragment: "hard link 'h'"),
        Case(
            label: "tar: hard link to a missing entry", fileName: "a.tar",
            bytes: tar { $0.entry("h", type: "1", linkTarget: "nothing") }, code: .unsafeEntry,
            fragment: "not an earlier file of the archive"),
        Case(
            label: "tar: hard link to a symlink", fileName: "a.tar",
            bytes: tar {
                $0.entry("s", type: "2", linkTarget: "x")
                $0.entry("h", type: "1", linkTarget: "s")
            },
            code: .unsafeEntry, fragment: "hard link 'h' points to 's'"),
        Case(
            label: "tar: character device", fileName: "a.tar",
            bytes: tar { $0.entry("null", type: "3") }, code: .unsafeEntry, fragment: "'null' is a device file"),
        Case(
            label: "tar: block device", fileName: "a.tar",
            bytes: tar { $0.entry("disk", type: "4") }, code: .unsafeEntry, fragment: "'disk' is a device file"),
        Case(
            label: "tar: FIFO", fileName: "a.tar",
            bytes: tar { $0.entry("pipe", type: "6") }, code: .unsafeEntry, fragment: "'pipe' is a FIFO"),
        Case(
            label: "tar: unknown type", fileName: "a.tar",
            bytes: tar { $0.entry("odd", type: "Q") }, code: .unsupportedArchive, fragment: "'odd' has the unsupported tar type 'Q'"),
        Case(
            label: "tar: bad header checksum", fileName: "a.tar",
            bytes: tar {
                $0.entry("ok.txt", content: evil)
                $0.entry("bad.txt", content: evil, corruptChecksum: true)
            },
            code: .checksumMismatch, fragment: "checksum mismatch at byte 1024"),
        Case(
            label: "tar: declared size longer than the data", fileName: "a.tar",
            bytes: {
                var b = TarBuilder()
                b.entry("big.txt", content: evil, declaredSize: 100_000)
                return b.bytes
            }(),
            code: .corruptArchive, fragment: "truncated"),
        Case(
            label: "tar: missing end marker", fileName: "a.tar",
            bytes: {
                var b = TarBuilder()
                b.entry("a.txt", content: evil)
                return b.bytes
            }(),
            code: .corruptArchive, fragment: "no end-of-archive marker"),
        Case(
            label: "tar: a folder where a file was", fileName: "a.tar",
            bytes: tar {
                $0.entry("x", content: evil)
                $0.entry("x/y", content: evil)
            }, code: .unsafeEntry, fragment: "'x/y' needs 'x' to be a folder"),
        Case(
            label: "tar: a file replacing a symlink", fileName: "a.tar",
            bytes: tar {
                $0.entry("s", type: "2", linkTarget: "t")
                $0.entry("s", content: evil)
            }, code: .unsafeEntry, fragment: "'s' collides with an earlier symlink"),
        Case(
            label: "zip: ../ traversal", fileName: "a.zip",
            bytes: zip([.init("../outside.txt", evil)]), code: .unsafeEntry, fragment: "'../outside.txt' contains '..'"),
        Case(
            label: "zip: backslash traversal", fileName: "a.zip",
            bytes: zip([.init("..\\outside.txt", evil)]), code: .unsafeEntry, fragment: "contains a backslash"),
        Case(
            label: "zip: absolute path", fileName: "a.zip",
            bytes: zip([.init("/tmp/autoupdate-evil", evil)]), code: .unsafeEntry, fragment: "has an absolute path"),
        Case(
            label: "zip: symlink leaving the destination", fileName: "a.zip",
            bytes: zip([.init("up", Array("../outside.txt".utf8), unixMode: 0o120777)]), code: .unsafeEntry,
            fragment: "symlink 'up' points to '../outside.txt'"),
        Case(
            label: "zip: CRC mismatch", fileName: "a.zip",
            bytes: zip([
                {
                    var e = ZipBuilder.Entry("a.txt", evil)
                    e.crc = 12345
                    return e
                }()
            ]), code: .checksumMismatch, fragment: "'a.txt' is corrupt: CRC-32 mismatch"),
        Case(
            label: "zip: local and central names differ", fileName: "a.zip",
            bytes: zip([
                {
                    var e = ZipBuilder.Entry("innocent.txt", evil)
                    e.centralName = "evil.sh"
                    return e
                }()
            ]),
            code: .unsafeEntry, fragment: "named 'innocent.txt' in its local header but 'evil.sh' in the central directory"),
        Case(
            label: "zip: local and central names differ, in a spooled entry (stored, with a data descriptor)", fileName: "a.zip",
            bytes: zip([
                .init("first.txt", evil),
                {
                    var e = ZipBuilder.Entry("innocent.txt", evil)
                    e.centralName = "evil.sh"
                    e.dataDescriptor = true
                    return e
                }(),
            ]),
            code: .unsafeEntry, fragment: "zip entry 2 is named 'innocent.txt' in its local header but 'evil.sh' in the central directory"),
        Case(
            label: "zip: duplicate names", fileName: "a.zip",
            bytes: zip([.init("a.txt", evil), .init("a.txt", evil)]), code: .unsafeEntry, fragment: "'a.txt' collides with an earlier entry"
        ),
        Case(
            label: "zip: encrypted entry", fileName: "a.zip",
            bytes: zip([
                {
                    var e = ZipBuilder.Entry("secret.txt", evil)
                    e.flags |= 1
                    return e
                }()
            ]), code: .unsupportedArchive, fragment: "'secret.txt' is encrypted"),
        Case(
            label: "zip: unsupported method", fileName: "a.zip",
            bytes: zip([
                {
                    var e = ZipBuilder.Entry("b.txt", evil)
                    e.method = 12
                    return e
                }()
            ]), code: .unsupportedArchive, fragment: "'b.txt' uses compression bzip2"),
        Case(
            label: "zip: a size that lies", fileName: "a.zip",
            bytes: zip([
                {
                    var e = ZipBuilder.Entry("small.txt", evil)
                    e.declaredSize = 2
                    return e
                }()
            ]), code: .corruptArchive, fragment: "'small.txt'"),
        Case(
            label: "zip: device in the central directory", fileName: "a.zip",
            bytes: zip([.init("dev", [], unixMode: 0o020644)]), code: .unsafeEntry, fragment: "'dev' is a device file"),
        Case(
            label: "garbage named .zip", fileName: "garbage.zip",
            bytes: Array(String(repeating: "not a zip at all ", count: 50).utf8), code: .corruptArchive, fragment: "not a zip archive"),
        Case(
            label: "garbage named .tar.gz", fileName: "garbage.tar.gz",
            bytes: Array(String(repeating: "not gzip ", count: 50).utf8), code: .corruptArchive, fragment: "not a gzip stream"),
        Case(
            label: "garbage named .tar", fileName: "garbage.tar",
            bytes: Array(String(repeating: "not tar! ", count: 200).utf8), code: .corruptArchive, fragment: "not a tar archive"),
    ]

    @Test("fails, names the entry, writes nothing outside and rolls back", arguments: cases)
    func refuses(_ testCase: Case) async throws {
        let sandbox = try ExtractionSandbox()
        let archive = sandbox.folder.url.appending(path: testCase.fileName)
        try Data(testCase.bytes).write(to: archive)
        await expectFailure(testCase.code, containing: testCase.fragment) {
            _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
        }
        #expect(try sandbox.changesOutsideDestination() == ["only here: \(testCase.fileName)"])
        #expect(!FileManager.default.fileExists(atPath: sandbox.destination.path), "the destination it created is removed")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/autoupdate-evil"))
    }

    @Test(
        "a compression bomb stops at the byte cap",
        arguments: [("zeros.tar.gz", "tar -czf zeros.tar.gz big"), ("zeros.zip", "zip -q zeros.zip big")])
    func bomb(name: String, command: String) async throws {
        let sandbox = try ExtractionSandbox()
        let work = try TemporaryDirectory()
        try await shell("head -c 50000000 /dev/zero > big && \(command)", in: work.url)
        let extractor = Extractor(configuration: ExtractionConfiguration(maxBytes: 10_000_000))
        await expectFailure(.sizeLimitExceeded, containing: "10000000 bytes") {
            _ = try await extractor.extract(file: work.url.appending(path: name).path, to: sandbox.destination.path)
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.destination.path))
    }

    @Test("a zip entry that inflates past its declared size fails at once")
    func inflatesPastDeclaredSize() async throws {
        let work = try TemporaryDirectory()
        try await shell("head -c 2000000 /dev/zero > big && zip -q z.zip big", in: work.url)
        var bytes = Array(try Data(contentsOf: work.url.appending(path: "z.zip")))
        // The local header's uncompressed size (offset 22) claims 1000 bytes.
        bytes.replaceSubrange(22..<26, with: [0xE8, 0x03, 0, 0])
        try Data(bytes).write(to: work.url.appending(path: "z.zip"))
        await expectFailure(.sizeLimitExceeded, containing: "'big' inflates past its declared size of 1000 bytes") {
            _ = try await Extractor().extract(file: work.url.appending(path: "z.zip").path, to: work.url.appending(path: "out").path)
        }
    }

    @Test("truncation at many offsets fails cleanly", arguments: ["a.tar.gz", "a.zip", "a.tar", "a.tar.bz2"])
    func truncation(name: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source, hardLinks: false)
        let command =
            switch name {
            case "a.zip": "cd src && zip -qry ../a.zip ."
            case "a.tar": "tar -cf a.tar -C src ."
            case "a.tar.bz2": "tar -cjf a.tar.bz2 -C src ."
            default: "tar -czf a.tar.gz -C src ."
            }
        try await shell(command, in: work.url)
        let whole = Array(try Data(contentsOf: work.url.appending(path: name)))
        // A plain tar ends with its first zero block (what follows is padding): cut before that
        // block is whole.
        let lastData = (whole.lastIndex { $0 != 0 } ?? 0) + 1
        let end = name == "a.tar" ? (lastData + 511) / 512 * 512 + 512 : whole.count
        var random = SeededRandom(seed: 77)
        let cuts = (0..<12).map { _ in Int.random(in: 1..<end, using: &random) } + [end - 1, end - 513, 10]
        for cut in cuts {
            let sandbox = try ExtractionSandbox()
            let archive = sandbox.folder.url.appending(path: name)
            try Data(whole[..<cut]).write(to: archive)
            do {
                _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
                Issue.record("\(name) cut at \(cut) of \(whole.count) was accepted")
            } catch let error as AutoupdateError {
                #expect([.corruptArchive, .checksumMismatch].contains(error.code), "cut at \(cut): \(error.debugDescription)")
            }
            #expect(!FileManager.default.fileExists(atPath: sandbox.destination.path), "cut at \(cut) left files")
            #expect(try sandbox.changesOutsideDestination() == ["only here: \(name)"])
        }
    }

    @Test("nothing that was in the destination before is overwritten")
    func neverOverwrites() async throws {
        let sandbox = try ExtractionSandbox()
        try FileManager.default.createDirectory(at: sandbox.destination, withIntermediateDirectories: true)
        let precious = sandbox.destination.appending(path: "a.txt")
        try Data("precious\n".utf8).write(to: precious)
        let archive = sandbox.folder.url.appending(path: "a.tar")
        try Data(
            Self.tar {
                $0.entry("new.txt", content: Self.evil)
                $0.entry("a.txt", content: Self.evil)
            }
        ).write(to: archive)
        await expectFailure(.unsafeEntry, containing: "already contains 'a.txt'") {
            _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
        }
        #expect(try String(contentsOf: precious, encoding: .utf8) == "precious\n")
        #expect(!FileManager.default.fileExists(atPath: sandbox.destination.appending(path: "new.txt").path), "rolled back")
    }

    @Test("a symlink already in the destination is never followed")
    func foreignSymlink() async throws {
        let sandbox = try ExtractionSandbox()
        try FileManager.default.createDirectory(at: sandbox.destination, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: sandbox.destination.appending(path: "etc").path, withDestinationPath: sandbox.folder.url.appending(path: "etc").path)
        let archive = sandbox.folder.url.appending(path: "a.tar")
        try Data(Self.tar { $0.entry("etc/passwd", content: Self.evil) }).write(to: archive)
        await expectFailure(.unsafeEntry, containing: "'etc/passwd' would write through the symlink 'etc'") {
            _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
        }
        try Data(Self.tar { $0.entry("via", type: "2", linkTarget: "etc/passwd") }).write(to: archive)
        await expectFailure(.unsafeEntry, containing: "symlink 'via' points to 'etc/passwd'") {
            _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
        }
        #expect(try sandbox.changesOutsideDestination() == ["only here: a.tar"])
    }

    @Test("setuid, setgid and sticky bits are dropped; exec bits are kept")
    func specialBits() async throws {
        let work = try TemporaryDirectory()
        let archive = work.url.appending(path: "a.tar")
        try Data(
            Self.tar {
                $0.entry("suid", content: Self.evil, mode: 0o4755)
                $0.entry("sgid", content: Self.evil, mode: 0o2750)
                $0.entry("sticky/", type: "5", mode: 0o1777)
            }
        ).write(to: archive)
        _ = try await Extractor().extract(file: archive.path, to: work.url.appending(path: "out").path)
        let snapshot = try TreeSnapshot(work.url.appending(path: "out"))
        #expect(snapshot.nodes["suid"] == .file(mode: 0o755, bytes: Data(Self.evil)))
        #expect(snapshot.nodes["sgid"] == .file(mode: 0o750, bytes: Data(Self.evil)))
        #expect(snapshot.nodes["sticky"] == .directory(mode: 0o777))
    }

    @Test("a later tar member of the same name wins, as with tar")
    func laterMemberWins() async throws {
        let work = try TemporaryDirectory()
        let archive = work.url.appending(path: "a.tar")
        try Data(
            Self.tar {
                $0.entry("a.txt", content: Array("one".utf8))
                $0.entry("a.txt", content: Array("two".utf8))
            }
        ).write(to: archive)
        _ = try await Extractor().extract(file: archive.path, to: work.url.appending(path: "out").path)
        #expect(try String(contentsOf: work.url.appending(path: "out/a.txt"), encoding: .utf8) == "two")
    }

    @Test("the entry cap is enforced")
    func entryCap() async throws {
        let work = try TemporaryDirectory()
        let archive = work.url.appending(path: "a.tar")
        try Data(Self.tar { builder in (0..<20).forEach { builder.entry("f\($0)", content: Self.evil) } }).write(to: archive)
        await expectFailure(.sizeLimitExceeded, containing: "more than the limit of 10 entries") {
            _ = try await Extractor(configuration: ExtractionConfiguration(maxEntries: 10))
                .extract(file: archive.path, to: work.url.appending(path: "out").path)
        }
    }

    /// Entry f05 (large, slow to inflate) has a wrong CRC in both headers; a later, tiny entry
    /// fails too: its data altered, or the archive cut inside it. However the entries spread over
    /// the inflating threads, f05's failure is the one reported, as if they inflated one by one.
    @Test("zip entries inflating on several cores: the first failure in the archive's order wins", arguments: ["altered", "cut"])
    func firstFailureInArchiveOrder(later: String) async throws {
        let work = try TemporaryDirectory()
        let script = #"""
            import sys, zipfile, random
            random.seed(5)
            words = [bytes(random.choice(b"abcdefghij") for _ in range(6)) for _ in range(300)]
            with zipfile.ZipFile("a.zip", "w", zipfile.ZIP_DEFLATED) as z:
                for i in range(40):
                    n = 1_500_000 if i == 5 else 300
                    z.writestr("f%02d" % i, b" ".join(random.choice(words) for _ in range(n // 7)))
            data = bytearray(open("a.zip", "rb").read())
            infos = {i.filename: i for i in zipfile.ZipFile("a.zip").infolist()}
            f05 = infos["f05"]
            data[f05.header_offset + 14] ^= 0xFF
            at = data.find(b"f05", data.find(b"PK\x01\x02")) - 46
            data[at + 16] ^= 0xFF
            f30 = infos["f30"]
            start = f30.header_offset + 30 + len("f30")
            if sys.argv[1] == "altered":
                for k in range(start, start + f30.compress_size):
                    data[k] ^= 0x55
            else:
                data = data[:start + f30.compress_size // 2]
            open("bad.zip", "wb").write(data)
            """#
        try script.write(to: work.url.appending(path: "make.py"), atomically: true, encoding: .utf8)
        try await shell("${AUTOUPDATE_PYTHON:-python3} make.py \(later)", in: work.url)
        for round in 0..<5 {
            let out = work.url.appending(path: "out-\(round)").path
            await expectFailure(.checksumMismatch, containing: "'f05' is corrupt: CRC-32 mismatch") {
                _ = try await Extractor().extract(file: work.url.appending(path: "bad.zip").path, to: out)
            }
            #expect(!FileManager.default.fileExists(atPath: out), "round \(round): the rollback left \(out)")
        }
    }

    @Test("a zip that fails while its files are still being written rolls back and returns")
    func failsWhileWriting() async throws {
        // Stored files, the last (8 MB) one's data altered: its CRC fails at its end, when its last
        // megabytes still wait for the writing thread.
        let work = try TemporaryDirectory()
        try await shell(
            "mkdir src && for i in 1 2 3 4; do head -c 262144 /dev/urandom > src/f$i; done && head -c 8000000 /dev/urandom > src/last && cd src && zip -q0 ../a.zip f1 f2 f3 f4 last",
            in: work.url)
        var zip = Array(try Data(contentsOf: work.url.appending(path: "a.zip")))
        let directoryStart = zip.count - 22 + 16
        let offset =
            Int(zip[directoryStart]) | Int(zip[directoryStart + 1]) << 8 | Int(zip[directoryStart + 2]) << 16 | Int(zip[directoryStart + 3])
            << 24
        zip[offset - 10] ^= 0xFF
        let archive = work.url.appending(path: "bad.zip").path
        try Data(zip).write(to: URL(fileURLWithPath: archive))
        for round in 0..<20 {
            let out = work.url.appending(path: "out-\(round)").path
            let done = DispatchSemaphore(value: 0)
            let extraction = Task.detached { () -> (any Error)? in
                defer { done.signal() }
                do {
                    _ = try await Extractor().extract(file: archive, to: out)
                    return nil
                } catch {
                    return error
                }
            }
            let seconds = Int(TestTiming.bound(.seconds(30)).components.seconds)
            let returned = try await onDedicatedThread { done.wait(timeout: .now() + .seconds(seconds)) == .success }
            try #require(returned, "round \(round): the extraction never returned")
            let error = await extraction.value
            #expect((error as? AutoupdateError)?.code == .checksumMismatch, "round \(round): \(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: out), "round \(round): the rollback left \(out)")
        }
    }
}
