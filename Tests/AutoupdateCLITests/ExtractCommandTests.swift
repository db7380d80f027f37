import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

@Suite("CLI: autoupdate extract")
struct ExtractCommandTests {
    @Test("extracts by name and by magic bytes, and says what it did")
    func extracts() async throws {
        let work = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: work.url.appending(path: "src/sub"), withIntermediateDirectories: true)
        try Data("hi\n".utf8).write(to: work.url.appending(path: "src/sub/a.txt"))
        let made = try await ChildProcess.run("/bin/sh", ["-c", "tar -czf a.tgz -C src . && cp a.tgz noext"], currentDirectory: work.path)
        try #require(made.status == 0)
        for name in ["a.tgz", "noext"] {
            let out = work.url.appending(path: "out-\(name)").path
            let result = try await autoupdate("extract", work.url.appending(path: name).path, out)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "extracted 1 file, 1 folder, 0 symlinks, 0 hard links (3 bytes) into \(out)\n")
            #expect(try String(contentsOfFile: out + "/sub/a.txt", encoding: .utf8) == "hi\n")
        }
    }

    @Test("an unsafe archive exits 1 naming the entry, nothing is left")
    func refuses() async throws {
        let work = try TemporaryDirectory()
        var builder = TarBuilder()
        builder.entry("../escape.txt", content: Array("x".utf8))
        builder.end()
        try Data(builder.bytes).write(to: work.url.appending(path: "bad.tar"))
        let result = try await autoupdate("extract", work.url.appending(path: "bad.tar").path, work.url.appending(path: "out").path)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "autoupdate: error: entry '../escape.txt' contains '..'; entries must stay inside the destination\n")
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "out").path))
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "escape.txt").path))
    }

    @Test("a file that cannot be written exits 1 naming it, nothing is left", .setsFileSizeLimit, arguments: ["a.zip", "a.tgz"])
    func writeFailure(archive: String) async throws {
        // A zip's files are written by a thread of their own, a tar.gz's by the extraction thread.
        let work = try TemporaryDirectory()
        let made = try await ChildProcess.run(
            "/bin/sh",
            [
                "-c",
                "mkdir src && head -c 1000000 /dev/urandom > src/big.bin && echo hi > src/small.txt && (cd src && zip -qr ../a.zip . && tar -czf ../a.tgz .)",
            ],
            currentDirectory: work.path)
        try #require(made.status == 0)
        // Files may not grow past 64 blocks; with SIGXFSZ ignored, write(2) fails with EFBIG.
        let out = work.url.appending(path: "out").path
        let result = try await ChildProcess.run(
            "/bin/sh",
            [
                "-c", "ulimit -f 64 && trap '' XFSZ && exec \"$0\" extract \"$1\" \"$2\"", BuiltProducts.cli,
                work.url.appending(path: archive).path, out,
            ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("big.bin': cannot write"), "\(result.stderr)")
        #expect(result.stderr.contains("File too large"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("--max-bytes stops a bomb; a file that is no archive is named")
    func limitsAndGarbage() async throws {
        let work = try TemporaryDirectory()
        let made = try await ChildProcess.run(
            "/bin/sh", ["-c", "head -c 5000000 /dev/zero > z && tar -czf z.tgz z && echo hello > junk"], currentDirectory: work.path)
        try #require(made.status == 0)
        let bomb = try await autoupdate(
            "extract", work.url.appending(path: "z.tgz").path, work.url.appending(path: "o").path, "--max-bytes", "1000000")
        #expect(bomb.status == 1)
        #expect(bomb.stderr.contains("'z' of 5000000 bytes would take the archive past the limit of 1000000 bytes"))
        let junk = try await autoupdate("extract", work.url.appending(path: "junk").path, work.url.appending(path: "o").path)
        #expect(junk.status == 1)
        #expect(junk.stderr.contains("cannot tell the format"))
        #expect(try await autoupdate("extract", "--max-bytes", "0", "a", "b").status == 64)
    }

    @Test("a tar name that is not UTF-8 exits 1 with the reason, which --help gives too")
    func nonUTF8Names() async throws {
        let work = try TemporaryDirectory()
        var builder = TarBuilder()
        builder.entry("", content: Array("x".utf8), rawName: Array("r".utf8) + [0xE9, 0x73, 0x75, 0x6D, 0xE9])
        builder.end()
        try Data(builder.bytes).write(to: work.url.appending(path: "latin1.tar"))
        let result = try await autoupdate("extract", work.url.appending(path: "latin1.tar").path, work.url.appending(path: "out").path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("the name of the entry at byte 0 is not UTF-8 (bytes 72 e9 73 75 6d e9)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "out").path))
        let help = try await autoupdate("extract", "--help")
        #expect(help.status == 0)
        // Help text is wrapped to the terminal's width.
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(
            words.contains("Names must be UTF-8 text without control characters: an update records every path it installs in filelist.txt"),
            "\(help.stdout)")
    }
}
