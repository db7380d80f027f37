import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// What only shows when permission bits apply: the CLI run as `nobody` (through `runuser` when
/// the tests run as root, as they do here and in CI).
@Suite("CLI as a user who is not root")
struct UnprivilegedTests {
    private func release(_ version: String, _ extra: [String: UpdateScenario.Content] = [:]) -> [String: UpdateScenario.Content] {
        [
            "bin/app": .text("#!/bin/sh\necho \"app \(version)\"\n", mode: 0o755),
            // Read-only folders, as Nix and Bazel outputs are.
            "ro": .folder(mode: 0o555), "ro/data.txt": .text("data \(version)\n"),
            "ro/sub": .folder(mode: 0o555), "ro/sub/deep.txt": .text("deep \(version)\n"),
        ].merging(extra) { $1 }
    }

    @Test("releases with read-only folders install and update; a failed install restores the app, and it still runs (D3)")
    func readOnlyFolders() async throws {
        let scenario = try UpdateScenario()
        let app = scenario.appFolder
        try scenario.publish(release("1.0"), version: "1.0")
        try Unprivileged.give(scenario.work.url)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            func cli(_ arguments: String...) async throws -> ChildProcess.Result {
                try await Unprivileged.run(BuiltProducts.cli, arguments)
            }
            let caFile = try Unprivileged.reachable(TestPKI.caFile)
            func update() async throws -> ChildProcess.Result {
                try await cli("update", "--url", url, "--dir", app.path, "--ca-file", caFile)
            }
            #expect(try await cli("--version").status == 0)
            if Unprivileged.isRoot {
                #expect(try await Unprivileged.run("/usr/bin/id", ["-un"]).stdout == "\(Unprivileged.user)\n")
            }
            let first = try await update()
            #expect(first.status == 0, "\(first.stderr)")
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(release("1.0")))

            try scenario.publish(release("2.0", ["locked/file.txt": .text("locked 2.0\n")]), version: "2.0")
            let second = try await update()
            #expect(second.status == 0, "\(second.stderr)")
            let v2 = try scenario.appFiles()
            #expect(v2 == (try UpdateScenario.snapshot(release("2.0", ["locked/file.txt": .text("locked 2.0\n")]))))

            // A folder the user may not write (taken by root): the install of 3.0 fails midway.
            #expect(chown(app.appending(path: "locked").path, 0, 0) == 0)
            try scenario.publish(release("3.0", ["locked/file.txt": .text("locked 3.0\n")]), version: "3.0")
            let failed = try await update()
            #expect(failed.status == 1)
            #expect(failed.stderr.contains("installing 3.0 failed; the app folder was restored"), "\(failed.stderr)")
            #expect(try scenario.appFiles() == v2, "the app is 2.0, whole")
            let left = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory)
            #expect(!left.contains("journal.json") && !left.contains { $0.hasPrefix("staging-") || $0.hasPrefix("backup-") }, "\(left)")
            let run = try await cli("run", "bin/app", "--url", url, "--dir", app.path, "--update", "never")
            #expect(run.status == 0 && run.stdout == "app 2.0\n", "\(run.stderr)")
            #expect(try await cli("recover", "--dir", app.path).stdout == "nothing to recover\n")

            // The folder given back: 3.0 installs.
            try Unprivileged.give(app.appending(path: "locked"))
            let third = try await update()
            #expect(third.status == 0, "\(third.stderr)")
            #expect(try scenario.appFiles() == (try UpdateScenario.snapshot(release("3.0", ["locked/file.txt": .text("locked 3.0\n")]))))
        }
    }

    @Test("extract as a user: a sparse file into read-only folders; a refused archive leaves nothing, the folders made above DEST included")
    func extract() async throws {
        let work = try TemporaryDirectory()
        try await shell(
            """
            mkdir -p src/ro && truncate -s 2097152 src/ro/sparse && printf data >> src/ro/sparse && printf x > src/ro/x \
            && chmod 555 src/ro && tar --sparse --format=posix -cf good.tar -C src . && chmod 755 src/ro
            """,
            in: work.url)
        var builder = TarBuilder()
        builder.entry("ro/", type: "5", mode: 0o555)
        builder.entry("ro/f", content: Array("f".utf8))
        builder.entry("ro/dev", type: "3")
        builder.end()
        try Data(builder.bytes).write(to: work.url.appending(path: "bad.tar"))
        try Unprivileged.give(work.url)

        let good = try await Unprivileged.run(
            BuiltProducts.cli, ["extract", work.url.appending(path: "good.tar").path, work.url.appending(path: "out/a/b").path])
        #expect(good.status == 0, "\(good.stderr)")
        let compared = try await ChildProcess.run(
            "cmp", [work.url.appending(path: "src/ro/sparse").path, work.url.appending(path: "out/a/b/ro/sparse").path])
        #expect(compared.status == 0, "\(compared.stdout)")
        var info = stat()
        #expect(
            stat(work.url.appending(path: "out/a/b/ro/sparse").path, &info) == 0 && Int(info.st_blocks) * 512 < 1 << 20,
            "written with its hole")
        #expect(stat(work.url.appending(path: "out/a/b/ro").path, &info) == 0 && info.st_mode & 0o777 == 0o555)

        let bad = try await Unprivileged.run(
            BuiltProducts.cli, ["extract", work.url.appending(path: "bad.tar").path, work.url.appending(path: "out2/x/y").path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("'ro/dev' is a device file"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "out2").path))
    }
}

@Suite("Operator controls as a user who is not root")
struct UnprivilegedOperatorTests {
    @Test("--from a folder the user can only read, the inhibit file for run and status, and status beside a root watch's lock")
    func fromAndInhibit() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let pub = scenario.work.url.appending(path: "release.pub").path
        try Data(key.publicKey.base64.utf8).write(to: URL(fileURLWithPath: pub))
        try scenario.publish(
            ["bin/app": .text("#!/bin/sh\necho \"app 1.0\"\n", mode: 0o755)], version: "1.0", signedWith: key, release: ReleaseOptions())
        try Unprivileged.give(scenario.work.url)
        // The source stays root's (read-only to the user, as a mounted stick often is).
        try await shell(
            "chown -R root:root '\(scenario.serverFolder.path)' && chmod -R a+rX,go-w '\(scenario.serverFolder.path)'",
            in: scenario.work.url)
        let dir = scenario.appFolder.path
        let updated = try await Unprivileged.run(
            BuiltProducts.cli, ["update", "--from", scenario.serverFolder.path, "--dir", dir, "--public-key", pub])
        #expect(updated.status == 0 && updated.stdout.contains("updated 0.0.0 → 1.0"), "\(updated.stdout)\(updated.stderr)")

        let inhibit = scenario.folder.inhibitFilePath
        #expect(FileManager.default.createFile(atPath: inhibit, contents: Data()))
        try await shell("chmod 644 '\(inhibit)'", in: scenario.work.url)
        let ran = try await Unprivileged.run(
            BuiltProducts.cli, ["run", "bin/app", "--from", scenario.serverFolder.path, "--dir", dir, "--public-key", pub])
        #expect(ran.stdout == "app 1.0\n" && ran.stderr.contains("updates are inhibited"), "\(ran.stdout)\(ran.stderr)")
        // A lock left by root's watch (its file root's, 0644): status reads past it.
        try Data("1 SIGUSR1\n".utf8).write(to: URL(fileURLWithPath: scenario.folder.updateDirectory + "/watch.pid"))
        let status = try await Unprivileged.run(BuiltProducts.cli, ["status", "--dir", dir, "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"inhibited\":true"), "\(status.stdout)\(status.stderr)")
        #expect(!status.stdout.contains("watchPID"), "no watch holds the lock: \(status.stdout)")
    }
}
