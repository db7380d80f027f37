import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// `autoupdate publish` keeps its promise on failure: the server folder stays exactly as it was.
@Suite("CLI: autoupdate publish")
struct PublishCommandTests {
    static let formats = ["project.zip", "project.tar.gz", "project.tar.bz2"]

    /// A server folder with 1.0 published and signed (archive, its signature, version.txt and
    /// its signature), and a 2.0 source that is bigger.
    struct Setup {
        let work: TemporaryDirectory
        var server: URL { work.url.appending(path: "server") }
        var key: String { work.url.appending(path: "release.key").path }

        init(archive: String) async throws {
            work = try TemporaryDirectory()
            let root = work.url
            try FileManager.default.createDirectory(at: root.appending(path: "v1/bin"), withIntermediateDirectories: true)
            try Data("#!/bin/sh\necho 1.0\n".utf8).write(to: root.appending(path: "v1/bin/app"))
            try FileManager.default.createDirectory(at: root.appending(path: "v2/bin"), withIntermediateDirectories: true)
            try Data("#!/bin/sh\necho 2.0\n".utf8).write(to: root.appending(path: "v2/bin/app"))
            try Fixtures.writeRandomFile("big.bin", in: root.appending(path: "v2"), count: 600_000)
            let keys = try await autoupdate("keygen", "--secret-key", key, "--public-key", root.appending(path: "release.pub").path)
            try #require(keys.status == 0, "\(keys.stderr)")
            let published = try await autoupdate(
                "publish", root.appending(path: "v1").path, "--version", "1.0", "--out", server.path, "--archive", archive,
                "--secret-key", key, "--expires-in", "3600")
            try #require(published.status == 0, "\(published.stderr)")
        }
    }

    @Test("a file-size limit hit while compressing leaves the server folder as it was", .setsFileSizeLimit, arguments: formats)
    func fileTooLarge(archive: String) async throws {
        let setup = try await Setup(archive: archive)
        let before = try TreeSnapshot(setup.server)
        // archive, version.txt, release.json, each with its signature, and releases/1.0/ with the
        // archive, its signature and the manifest
        #expect(before.nodes.count == 11, "\(before)")
        // Files may not grow past 200 blocks of 512 bytes; with SIGXFSZ ignored, write(2) fails with EFBIG.
        let result = try await ChildProcess.run(
            "/bin/sh",
            [
                "-c", "ulimit -f 200 && trap '' XFSZ && exec \"$0\" \"$@\"", BuiltProducts.cli,
                "publish", setup.work.url.appending(path: "v2").path, "--version", "2.0", "--out", setup.server.path,
                "--archive", archive, "--secret-key", setup.key, "--expires-in", "3600",
            ])
        #expect(result.status == 1)
        #expect(result.stderr == "autoupdate: error: cannot write '\(setup.server.path)/releases/2.0/\(archive)': File too large\n")
        let after = try TreeSnapshot(setup.server)
        #expect(after.differences(from: before).isEmpty, "\(after.differences(from: before))")
    }

    @Test(
        "a full disk leaves the server folder as it was (a small tmpfs)", .enabled(if: Unprivileged.isRoot, "mounting a tmpfs needs root"),
        arguments: formats)
    func diskFull(archive: String) async throws {
        let work = try TemporaryDirectory()
        try Fixtures.writeRandomFile("big.bin", in: work.url, count: 400_000)
        // In a mount namespace of its own, so that the tmpfs goes away with the shell.
        let script = """
            set -e
            mkdir mnt && mount -t tmpfs -o size=192k tmpfs mnt
            mkdir -p v1 v2 && echo 1.0 > v1/app && echo 2.0 > v2/app && cp big.bin v2/
            "$0" publish v1 --version 1.0 --out mnt/server --archive "$1" >/dev/null
            before=$(cd mnt/server && find . | sort && find . -type f | sort | xargs sha256sum)
            set +e
            "$0" publish v2 --version 2.0 --out mnt/server --archive "$1"
            echo "status $?"
            after=$(cd mnt/server && find . | sort && find . -type f | sort | xargs sha256sum)
            [ "$before" = "$after" ] && echo unchanged || { echo "before: $before"; echo "after: $after"; }
            """
        let result = try await ChildProcess.run(
            "unshare", ["--mount", "/bin/sh", "-c", script, BuiltProducts.cli, archive], currentDirectory: work.path)
        #expect(result.stdout == "status 1\nunchanged\n", "\(result.stdout)")
        #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
    }

    @Test("as a non-root user: publishing works, and an unreadable source file fails with the folder unchanged", arguments: formats)
    func unprivileged(archive: String) async throws {
        let work = try TemporaryDirectory()
        let root = work.url
        try FileManager.default.createDirectory(at: root.appending(path: "v1"), withIntermediateDirectories: true)
        try Data("1.0\n".utf8).write(to: root.appending(path: "v1/app"))
        try FileManager.default.createDirectory(at: root.appending(path: "v2"), withIntermediateDirectories: true)
        try Data("2.0\n".utf8).write(to: root.appending(path: "v2/app"))
        try Fixtures.writeRandomFile("z-secret", in: root.appending(path: "v2"), count: 1000)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: root.appending(path: "v2/z-secret").path)
        try Unprivileged.give(root)
        let server = root.appending(path: "server").path
        let first = try await Unprivileged.run(
            BuiltProducts.cli, ["publish", root.appending(path: "v1").path, "--version", "1.0", "--out", server, "--archive", archive])
        try #require(first.status == 0, "\(first.stderr)")
        let before = try TreeSnapshot(URL(fileURLWithPath: server))
        let second = try await Unprivileged.run(
            BuiltProducts.cli, ["publish", root.appending(path: "v2").path, "--version", "2.0", "--out", server, "--archive", archive])
        #expect(second.status == 1)
        #expect(second.stderr.contains("cannot read '\(root.path)/v2/z-secret'"), "\(second.stderr)")
        #expect(try TreeSnapshot(URL(fileURLWithPath: server)).differences(from: before).isEmpty)
        #expect(try String(contentsOfFile: server + "/version.txt", encoding: .utf8) == "1.0\n")
    }

    @Test("a failed publish into a new folder leaves no folder behind", .setsFileSizeLimit)
    func newFolder() async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Fixtures.writeRandomFile("big.bin", in: source, count: 300_000)
        let out = work.url.appending(path: "new/server").path
        let result = try await ChildProcess.run(
            "/bin/sh",
            [
                "-c", "ulimit -f 100 && trap '' XFSZ && exec \"$0\" publish \"$1\" --version 1.0 --out \"$2\"", BuiltProducts.cli,
                source.path, out,
            ])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "new").path))
    }
}
