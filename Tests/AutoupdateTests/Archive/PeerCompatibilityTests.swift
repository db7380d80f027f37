@testable import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

/// Archives that Go's, CPython's and libarchive's readers read (their test corpora, in
/// `../shared/peer_corpus/`, measured by `make peer-corpus`), remade here by our own builders and
/// by the real tools: each case is a reading rule we share with them, or a refusal we keep.
@Suite("Extractor: what Go, CPython and libarchive read", .ownThread)
struct PeerCompatibilityTests {
    static let text = Array("hello\n".utf8)

    static func tar(_ build: (inout TarBuilder) -> Void) -> [UInt8] {
        var builder = TarBuilder()
        build(&builder)
        builder.end()
        return builder.bytes
    }

    /// Extracts `bytes` (named `name`) into a fresh folder and snapshots what came out.
    static func extract(
        _ bytes: [UInt8], name: String = "a.tar", configuration: ExtractionConfiguration = .init()
    ) async throws -> TreeSnapshot {
        let work = try TemporaryDirectory()
        let archive = work.url.appending(path: name)
        try Data(bytes).write(to: archive)
        _ = try await Extractor(configuration: configuration).extract(file: archive.path, to: work.url.appending(path: "out").path)
        return try TreeSnapshot(work.url.appending(path: "out"))
    }

    /// Expects `bytes` to be refused, with nothing left behind.
    static func refuse(
        _ bytes: [UInt8], name: String = "a.tar", _ code: AutoupdateError.Code, _ fragment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let sandbox = try ExtractionSandbox()
        let archive = sandbox.folder.url.appending(path: name)
        try Data(bytes).write(to: archive)
        await expectFailure(code, containing: fragment, sourceLocation: sourceLocation) {
            _ = try await Extractor().extract(file: archive.path, to: sandbox.destination.path)
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.destination.path), sourceLocation: sourceLocation)
        #expect(try sandbox.changesOutsideDestination() == ["only here: \(name)"], sourceLocation: sourceLocation)
    }

    /// The names a tool lists (`tar -tf`, `bsdtar -tf`), sorted.
    static func listing(_ tool: String, of bytes: [UInt8]) async throws -> [String] {
        let work = try TemporaryDirectory()
        try Data(bytes).write(to: work.url.appending(path: "a.tar"))
        let result = try await ChildProcess.run(tool, ["-tf", work.url.appending(path: "a.tar").path])
        return result.stdout.split(separator: "\n").map(String.init).sorted()
    }

    // MARK: 1. Header-only types

    @Test("a folder, symlink or hard link header with a size carries no data: the entry after it is read")
    func headerOnlyTypes() async throws {
        let bytes = Self.tar {
            $0.entry("file.txt", content: Self.text)
            // CPython's testtar: a type-5 folder whose size field says 255; libarchive's
            // test_compat_tar_directory_1 likewise.
            $0.entry("dir/", type: "5", declaredSize: 255)
            $0.entry("hard", type: "1", linkTarget: "file.txt", declaredSize: 600)
            $0.entry("soft", type: "2", linkTarget: "file.txt", declaredSize: 9)
            $0.entry("after.txt", content: Self.text)
        }
        let tree = try await Self.extract(bytes)
        #expect(tree.nodes.keys.sorted() == ["after.txt", "dir", "file.txt", "hard", "soft"])
        #expect(tree.nodes["hard"] == .file(mode: 0o644, bytes: Data(Self.text)))
        #expect(tree.nodes["soft"] == .symlink(target: "file.txt"))
        #expect(try await Self.listing("bsdtar", of: bytes) == ["after.txt", "dir/", "file.txt", "hard", "soft"])
    }

    @Test("a hard link with a pax size is followed by that much data, which is skipped")
    func hardLinkWithPaxSize() async throws {
        var builder = TarBuilder()
        builder.entry("file.txt", content: Self.text)
        builder.pax([("size", Array("700".utf8))])
        builder.entry("hard", type: "1", linkTarget: "file.txt", declaredSize: 0)
        builder.raw([UInt8](repeating: 0x41, count: 700) + [UInt8](repeating: 0, count: 1024 - 700))
        builder.entry("after.txt", content: Self.text)
        builder.end()
        let tree = try await Self.extract(builder.bytes)
        #expect(tree.nodes.keys.sorted() == ["after.txt", "file.txt", "hard"])
        #expect(tree.nodes["hard"] == .file(mode: 0o644, bytes: Data(Self.text)))
    }

    // MARK: 2. Consecutive pax headers

    @Test("of two pax headers in a row the later one counts, as with GNU tar and bsdtar")
    func consecutivePaxHeaders() async throws {
        let bytes = Self.tar {
            $0.pax([("path", Array("first.txt".utf8))])
            $0.pax([("path", Array("second.txt".utf8))])
            $0.entry("ustar.txt", content: Self.text)
            $0.pax([("path", Array("dropped.txt".utf8))])
            $0.pax([("mtime", Array("1700000000".utf8))])
            $0.entry("own-name.txt", content: Self.text)
        }
        let ours = try await Self.extract(bytes).nodes.keys.sorted()
        #expect(ours == ["own-name.txt", "second.txt"])
        #expect(try await Self.listing("tar", of: bytes) == ours)
        #expect(try await Self.listing("bsdtar", of: bytes) == ours)
    }

    @Test("an old Sun extended header (X) reads like a pax header")
    func sunExtendedHeader() async throws {
        let bytes = Self.tar {
            $0.pax([("path", Array("long/name/from/X.txt".utf8))], type: "X")
            $0.entry("short.txt", content: Self.text)
        }
        #expect(try await Self.extract(bytes).nodes["long/name/from/X.txt"] == .file(mode: 0o644, bytes: Data(Self.text)))
    }

    // MARK: 3. Pax values

    @Test("binary extended-attribute values are accepted and ignored")
    func binaryXattrs() async throws {
        let bytes = Self.tar {
            $0.pax([
                ("SCHILY.xattr.security.selinux", Array("system_u:object_r:bin_t:s0".utf8) + [0]),
                ("SCHILY.xattr.security.capability", [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xFF, 0xFE]),
                ("path", Array("tool".utf8)),
            ])
            $0.entry("tool", content: Self.text, mode: 0o755)
        }
        #expect(try await Self.extract(bytes).nodes == ["tool": .file(mode: 0o755, bytes: Data(Self.text))])
    }

    @Test("a NUL in a pax key or in a path or link value is still refused")
    func paxNul() async throws {
        try await Self.refuse(
            Self.tar {
                $0.pax([("SCHILY.xattr.user\u{0}hidden", Array("x".utf8))])
                $0.entry("a.txt", content: Self.text)
            }, .corruptArchive, "a pax header key contains a NUL byte")
        try await Self.refuse(
            Self.tar {
                $0.pax([("path", Array("innocent.txt".utf8) + [0] + Array("evil.sh".utf8))])
                $0.entry("a.txt", content: Self.text)
            }, .corruptArchive, "the pax value of 'path' contains a NUL byte")
        try await Self.refuse(
            Self.tar {
                $0.pax([("linkpath", Array("t".utf8) + [0])])
                $0.entry("l", type: "2", linkTarget: "t")
            }, .corruptArchive, "the pax value of 'linkpath' contains a NUL byte")
    }

    @Test("a global pax header that sets a path is refused; one that sets an mtime is read")
    func globalPax() async throws {
        try await Self.refuse(
            Self.tar {
                $0.pax([("path", Array("everything.txt".utf8))], type: "g")
                $0.entry("a.txt", content: Self.text)
            }, .unsupportedArchive, "a pax global header sets 'path'")
        let bytes = Self.tar {
            $0.pax([("mtime", Array("1600000000".utf8)), ("comment", Array("made by git archive".utf8))], type: "g")
            $0.entry("a.txt", content: Self.text)
        }
        #expect(try await Self.extract(bytes).nodes == ["a.txt": .file(mode: 0o644, bytes: Data(Self.text))])
    }

    // MARK: 6. GNU sparse files

    static let sparseFormats = [
        "--format=gnu", "--format=posix --sparse-version=0.0", "--format=posix --sparse-version=0.1",
        "--format=posix --sparse-version=1.0",
    ]

    @Test("GNU tar's sparse files extract with their holes, and the byte cap counts their real size", arguments: sparseFormats)
    func sparse(format: String) async throws {
        let work = try TemporaryDirectory()
        // 4 MiB + 4 bytes: data at the start, in the middle and at the end, holes between.
        try await shell(
            """
            mkdir src && truncate -s 4194304 src/sparse && printf head | dd of=src/sparse conv=notrunc status=none \
            && printf middle | dd of=src/sparse bs=1 seek=2000000 conv=notrunc status=none && printf tail >> src/sparse \
            && truncate -s 1048576 src/hole-only && printf plain > src/plain \
            && tar --sparse \(format) -cf a.tar -C src . && tar -tvf a.tar >/dev/null
            """,
            in: work.url)
        let bytes = Array(try Data(contentsOf: work.url.appending(path: "a.tar")))
        #expect(bytes.count < 100_000, "tar stored the holes: \(bytes.count) bytes")
        let out = work.url.appending(path: "out")
        _ = try await Extractor().extract(file: work.url.appending(path: "a.tar").path, to: out.path)
        let result = try await ChildProcess.run(
            "/bin/sh", ["-c", "cmp src/sparse out/sparse && cmp src/hole-only out/hole-only && cmp src/plain out/plain"],
            currentDirectory: work.path)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        var info = stat()
        #expect(stat(out.appending(path: "sparse").path, &info) == 0)
        #expect(info.st_size == 4_194_308)
        #expect(Int(info.st_blocks) * 512 < 1 << 20, "the holes were written: \(info.st_blocks) blocks")

        // The cap applies to the expanded size, which the archive's few stored bytes hide.
        await expectFailure(.sizeLimitExceeded, containing: "3000000 bytes") {
            _ = try await Extractor(configuration: ExtractionConfiguration(maxBytes: 3_000_000))
                .extract(file: work.url.appending(path: "a.tar").path, to: work.url.appending(path: "capped").path)
        }
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "capped").path))
    }

    @Test("a sparse map that overlaps, runs past the real size or misstates the stored bytes is refused")
    func hostileSparseMaps() async throws {
        func sparse(map: String, realSize: String, stored: [UInt8]) -> [UInt8] {
            Self.tar {
                $0.pax([
                    ("GNU.sparse.major", Array("0".utf8)), ("GNU.sparse.minor", Array("1".utf8)),
                    ("GNU.sparse.name", Array("s.bin".utf8)), ("GNU.sparse.size", Array(realSize.utf8)),
                    ("GNU.sparse.numblocks", Array(String(map.split(separator: ",").count / 2).utf8)),
                    ("GNU.sparse.map", Array(map.utf8)),
                ])
                $0.entry("GNUSparseFile.0/s.bin", content: stored)
            }
        }
        // A well-formed map first, so that a refusal below is the map's fault.
        let good = try await Self.extract(sparse(map: "0,3,100,3", realSize: "200", stored: Array("abcdef".utf8)))
        let expected = Array("abc".utf8) + [UInt8](repeating: 0, count: 97) + Array("def".utf8) + [UInt8](repeating: 0, count: 97)
        #expect(good.nodes == ["s.bin": .file(mode: 0o644, bytes: Data(expected))])

        try await Self.refuse(
            sparse(map: "0,10,5,10", realSize: "200", stored: [UInt8](repeating: 1, count: 20)),
            .corruptArchive, "has a region out of order, overlapping or past the file's size")
        try await Self.refuse(
            sparse(map: "0,3,190,20", realSize: "200", stored: [UInt8](repeating: 1, count: 23)),
            .corruptArchive, "has a region out of order, overlapping or past the file's size")
        try await Self.refuse(
            sparse(map: "0,3,100,3", realSize: "200", stored: [UInt8](repeating: 1, count: 9)),
            .corruptArchive, "places 6 bytes, but 9 are stored")
    }

    @Test("a GNU sparse 1.0 map of many regions is read in one pass, in any chunking")
    func largeSparseMap() async throws {
        // 100 000 one-byte regions, one every other byte: a 1.2 MB map at the start of the data.
        // Scanning the whole map again at each of its 2 300 blocks (as a first version did) took
        // minutes; one pass takes a fraction of a second.
        let regions = 100_000
        var map = Array("\(regions)\n".utf8)
        for index in 0..<regions {
            map += Array("\(index * 2)\n1\n".utf8)
        }
        map += [UInt8](repeating: 0, count: (512 - map.count % 512) % 512)
        let stored = (0..<regions).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) }
        let bytes = Self.tar {
            $0.pax([
                ("GNU.sparse.major", Array("1".utf8)), ("GNU.sparse.minor", Array("0".utf8)),
                ("GNU.sparse.name", Array("many.bin".utf8)), ("GNU.sparse.realsize", Array("\(regions * 2)".utf8)),
            ])
            $0.entry("GNUSparseFile.0/many.bin", content: map + stored)
        }
        let start = TestTiming.threadCPUTime()
        for seed: UInt64 in [1, 2] {
            let entries = try readTar(bytes, seed: seed)
            #expect(entries.count == 1)
            #expect(entries.first?.entry.path == "many.bin")
            let content = entries.first?.content ?? []
            #expect(content.count == regions * 2)
            #expect(content.enumerated().allSatisfy { $0.offset % 2 == 1 ? $0.element == 0 : $0.element == stored[$0.offset / 2] })
        }
        let used = TestTiming.threadCPUTime() - start
        #expect(used < TestTiming.bound(.seconds(20)), "two reads took \(used) of CPU")
    }

    @Test("an old GNU sparse file with many extension blocks is read in one pass")
    func oldGNUSparseExtensions() async throws {
        // 4 regions in the header, 21 in each extension block: 100 000 one-byte regions.
        let regions = 4 + 21 * 4_762
        func octal(_ value: Int) -> [UInt8] {
            let digits = Array(String(value, radix: 8).utf8)
            return [UInt8](repeating: UInt8(ascii: "0"), count: 11 - digits.count) + digits + [0]
        }
        func map(_ first: Int, _ count: Int) -> [UInt8] {
            (first..<(first + count)).flatMap { octal($0 * 2) + octal(1) }
        }
        var builder = TarBuilder()
        let stored = (0..<regions).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) }
        // Old GNU magic ("ustar  "), so that the bytes from 345 on are the map, not a prefix.
        builder.entry(
            "old.bin", type: "S", declaredSize: regions,
            fields: [
                257: Array("ustar  ".utf8) + [0], 386: map(0, 4), 482: [1], 483: octal(regions * 2),
            ])
        var next = 4
        while next < regions {
            var block = map(next, 21)
            next += 21
            block += [UInt8](repeating: 0, count: 504 - block.count)
            block += [next < regions ? 1 : 0] + [UInt8](repeating: 0, count: 7)
            builder.raw(block)
        }
        builder.raw(stored + [UInt8](repeating: 0, count: (512 - stored.count % 512) % 512))
        builder.end()
        let start = TestTiming.threadCPUTime()
        let entries = try readTar(builder.bytes, seed: 3)
        #expect(entries.map(\.entry.path) == ["old.bin"])
        let content = entries.first?.content ?? []
        #expect(content.count == regions * 2)
        #expect(content.enumerated().allSatisfy { $0.offset % 2 == 1 ? $0.element == 0 : $0.element == stored[$0.offset / 2] })
        let used = TestTiming.threadCPUTime() - start
        #expect(used < TestTiming.bound(.seconds(20)), "the read took \(used) of CPU")
    }

    // MARK: 7. Tar types

    @Test("a volume label (V) and an ACL (A) are skipped, a GNU dumpdir (D) is a folder")
    func gnuTypes() async throws {
        let work = try TemporaryDirectory()
        try await shell(
            """
            mkdir -p src/dir/sub && printf one > src/dir/one && printf two > src/dir/sub/two \
            && tar -V 'backup volume' -cf labelled.tar -C src dir \
            && tar --listed-incremental=snapshot -cf incremental.tar -C src dir
            """,
            in: work.url)
        for name in ["labelled.tar", "incremental.tar"] {
            let bytes = Array(try Data(contentsOf: work.url.appending(path: name)))
            let tree = try await Self.extract(bytes)
            #expect(tree.nodes.keys.sorted() == ["dir", "dir/one", "dir/sub", "dir/sub/two"], "\(name)")
        }
        let acl = Self.tar {
            $0.entry("a.txt", type: "A", content: Array("user::rw-\ngroup::r--\n".utf8))
            $0.entry("a.txt", content: Self.text)
        }
        #expect(try await Self.extract(acl).nodes == ["a.txt": .file(mode: 0o644, bytes: Data(Self.text))])
    }

    // MARK: 8. Names

    @Test("a name that is not UTF-8 is refused with the reason, as is a name holding a newline")
    func names() async throws {
        // "café" in Latin-1, as old tars (and CPython's testtar) write it.
        try await Self.refuse(
            Self.tar { $0.entry("", content: Self.text, rawName: Array("caf".utf8) + [0xE9]) },
            .unsupportedArchive, "is not UTF-8 (bytes 63 61 66 e9): names must be UTF-8 text, as filelist.txt records installed files")
        try await Self.refuse(
            Self.tar {
                $0.pax([("hdrcharset", Array("BINARY".utf8)), ("path", [0x6E, 0xFF, 0x6D])])
                $0.entry("n", content: Self.text)
            }, .unsupportedArchive, "the pax value of 'path' is not UTF-8")
        try await Self.refuse(
            Self.tar { $0.entry("evil\nfilelist.txt", content: Self.text) },
            .unsafeEntry, "has a control character in its name; filelist.txt")
        #expect(try await Self.extract(Self.tar { $0.entry("ünïcødé ✓.txt", content: Self.text) }).nodes.keys.sorted() == ["ünïcødé ✓.txt"])
    }

    // MARK: 9. Rollback

    @Test("a refused extraction removes the parent folders it made, inside the destination and above it")
    func rollbackRemovesParents() async throws {
        let work = try TemporaryDirectory()
        let destination = work.url.appending(path: "dest")
        try FileManager.default.createDirectory(at: destination.appending(path: "kept"), withIntermediateDirectories: true)
        let archive = work.url.appending(path: "a.tar")
        try Data(
            Self.tar {
                $0.entry("kept/new.txt", content: Self.text)
                $0.entry("x/y/z/deep.txt", content: Self.text)
                $0.entry("x/y/dev", type: "3")
            }
        ).write(to: archive)
        await expectFailure(.unsafeEntry, containing: "'x/y/dev' is a device file") {
            _ = try await Extractor().extract(file: archive.path, to: destination.path)
        }
        #expect(try TreeSnapshot(destination).nodes == ["kept": .directory(mode: 0o755)])

        // A destination whose parents were missing: they go too, the folder that existed stays.
        let nested = work.url.appending(path: "new/deeper/dest")
        await expectFailure(.unsafeEntry, containing: "'x/y/dev' is a device file") {
            _ = try await Extractor().extract(file: archive.path, to: nested.path)
        }
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "new").path))
        #expect(FileManager.default.fileExists(atPath: work.path))
    }

    // MARK: 10. Framing

    @Test("tar framing: one zero block ends the archive; what follows the end is ignored unless it is a header")
    func tarFraming() async throws {
        var oneBlock = TarBuilder()
        oneBlock.entry("a.txt", content: Self.text)
        oneBlock.raw([UInt8](repeating: 0, count: 512))
        #expect(try await Self.extract(oneBlock.bytes).nodes.keys.sorted() == ["a.txt"])

        var padded = TarBuilder()
        padded.entry("a.txt", content: Self.text)
        padded.end()
        padded.raw([UInt8](repeating: 0x5A, count: 700))
        #expect(try await Self.extract(padded.bytes).nodes.keys.sorted() == ["a.txt"])

        var concatenated = TarBuilder()
        concatenated.entry("a.txt", content: Self.text)
        concatenated.end()
        concatenated.entry("hidden.txt", content: Self.text)
        concatenated.end()
        try await Self.refuse(concatenated.bytes, .corruptArchive, "another tar header follows the end-of-archive marker, at byte 2048")

        var unterminated = TarBuilder()
        unterminated.entry("a.txt", content: Self.text)
        try await Self.refuse(unterminated.bytes, .corruptArchive, "no end-of-archive marker")
    }

    @Test("an entry with an empty name is the archive's own folder; a symlink may replace an earlier symlink")
    func emptyNameAndSymlinkReplacement() async throws {
        let tree = try await Self.extract(
            Self.tar {
                $0.entry("", type: "5", mode: 0o755)
                $0.entry("link", type: "2", linkTarget: "old")
                $0.entry("link", type: "2", linkTarget: "new")
                $0.entry("new", content: Self.text)
            })
        #expect(tree.nodes == ["link": .symlink(target: "new"), "new": .file(mode: 0o644, bytes: Data(Self.text))])
    }

    // MARK: 4-5. Zip framing

    static func zip(
        prefix: [UInt8] = [], offsetsIncludePrefix: Bool = false, trailing: [UInt8] = [], _ entries: [ZipBuilder.Entry]
    ) -> [UInt8] {
        var builder = ZipBuilder()
        builder.entries = entries
        builder.prefix = prefix
        builder.offsetsIncludePrefix = offsetsIncludePrefix
        builder.trailing = trailing
        return builder.build()
    }

    static let stub = Array("#!/bin/sh\nexec unzip \"$0\"\n".utf8) + [UInt8](repeating: 0x90, count: 3000)

    @Test("a zip64 locator signature inside a comment is not taken for one, streamed or spooled")
    func falseZip64() async throws {
        // The 20 bytes right before the end record look like a zip64 locator pointing at byte 0.
        let locator: [UInt8] = [0x50, 0x4B, 0x06, 0x07, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [1, 0, 0, 0]
        for spooled in [false, true] {
            var first = ZipBuilder.Entry("a.txt", Self.text)
            first.dataDescriptor = spooled
            var last = ZipBuilder.Entry("b.txt", Self.text)
            last.centralComment = Array("comment:".utf8) + locator
            let tree = try await Self.extract(Self.zip([first, last]), name: "a.zip")
            #expect(tree.nodes.keys.sorted() == ["a.txt", "b.txt"], "spooled: \(spooled)")
        }
    }

    @Test("a zip after a stub (self-extracting), with offsets from the file's or the zip's start, reads as unzip reads it")
    func selfExtracting() async throws {
        for includes in [false, true] {
            var stored = ZipBuilder.Entry("stored.txt", Self.text)
            stored.dataDescriptor = true
            let bytes = Self.zip(prefix: Self.stub, offsetsIncludePrefix: includes, [.init("a.txt", Self.text), stored])
            let tree = try await Self.extract(bytes, name: "a.zip")
            #expect(tree.nodes.keys.sorted() == ["a.txt", "stored.txt"], "offsets include the stub: \(includes)")
        }
        // The real tools: a stub cat'ed before a zip (unzip warns, exit 1, and reads it), then
        // `zip -A` adjusting its offsets.
        let work = try TemporaryDirectory()
        try await shell(
            """
            mkdir src && printf one > src/one && head -c 100000 /dev/urandom > src/random && cd src && zip -q ../plain.zip one random \
            && cd .. && head -c 5000 /dev/urandom > stub && cat stub plain.zip > sfx.zip && cp sfx.zip adjusted.zip && zip -qA adjusted.zip \
            && { unzip -tq sfx.zip >/dev/null || [ $? = 1 ]; } && unzip -tq adjusted.zip
            """,
            in: work.url)
        for name in ["sfx.zip", "adjusted.zip"] {
            let tree = try await Self.extract(Array(try Data(contentsOf: work.url.appending(path: name))), name: "a.zip")
            #expect(
                tree.nodes["random"] == .file(mode: 0o644, bytes: try Data(contentsOf: work.url.appending(path: "src/random"))), "\(name)")
            #expect(tree.nodes.keys.sorted() == ["one", "random"], "\(name)")
        }
    }

    @Test("bytes no entry covers are read past, unless they hold a zip record")
    func gapsAndTrailingBytes() async throws {
        var gap = ZipBuilder.Entry("b.txt", Self.text)
        gap.gapBefore = [UInt8](repeating: 0, count: 64)
        #expect(
            try await Self.extract(Self.zip([.init("a.txt", Self.text), gap]), name: "a.zip").nodes.keys.sorted() == ["a.txt", "b.txt"])

        var hiding = ZipBuilder.Entry("b.txt", Self.text)
        hiding.gapBefore = Array("junk".utf8) + [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60)
        try await Self.refuse(
            Self.zip([.init("a.txt", Self.text), hiding]), name: "a.zip",
            .unsafeEntry, "holds a record at byte 45 that its central directory does not list")

        let trailing = Array("signature block, padding\n".utf8)
        #expect(
            try await Self.extract(Self.zip(trailing: trailing, [.init("a.txt", Self.text)]), name: "a.zip").nodes.keys.sorted() == [
                "a.txt"
            ])

        let secondEnd: [UInt8] = [0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)
        try await Self.refuse(
            Self.zip(trailing: secondEnd, [.init("a.txt", Self.text)]), name: "a.zip",
            .corruptArchive, "unexpected data after the zip archive's end record")
    }
}
