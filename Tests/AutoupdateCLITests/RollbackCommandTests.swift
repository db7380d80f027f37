import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

@Suite("CLI: autoupdate rollback among kept versions")
struct RollbackCommandTests {
    static func app(_ version: String) -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755), "lib/\(version).txt": .text("only in \(version)\n")]
    }

    func updater(_ scenario: UpdateScenario, _ server: TestHTTPSServer) throws -> Updater {
        try Updater(
            folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
            configuration: .forTests(), logger: Logger(label: "test"))
    }

    @Test(
        "--keep 2 keeps the two newest replaced versions; rollback puts one back (the replaced one kept and marked bad); refused while the app runs"
    )
    func rollback() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            _ = try await updater(scenario, server).update()
            // Three updates, each confirmed as a watch with --keep 2 confirms them.
            for version in ["2.0", "3.0", "4.0"] {
                try scenario.publish(Self.app(version), version: version)
                func update() async throws {
                    let prepared = try #require(try await updater(scenario, server).prepare())
                    let kept = try await updater(scenario, server).installOnTrial(prepared)
                    try updater(scenario, server).confirmTrial(kept, keeping: 2)
                }
                try await update()
            }
            let dir = scenario.appFolder.path
            #expect(scenario.folder.status().kept == ["2.0", "3.0"], "1.0 pruned, the lowest first")

            let back = try await autoupdate("rollback", "--dir", dir)
            #expect(back.status == 0 && back.stdout.contains("rolled back 4.0 → 3.0"), "\(back.stdout)\(back.stderr)")
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(Self.app("3.0")))
            var status = scenario.folder.status()
            #expect(status.installed == "3.0" && status.kept == ["2.0", "4.0"] && status.bad == ["4.0"], "\(status)")
            #expect(status.highest == "4.0", "the floor stays; it does not block an explicit rollback")

            let further = try await autoupdate("rollback", "--dir", dir, "--to", "2.0")
            #expect(further.status == 0, "\(further.stderr)")
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(Self.app("2.0")))
            status = scenario.folder.status()
            #expect(status.installed == "2.0" && status.kept == ["3.0", "4.0"] && status.bad == ["3.0", "4.0"], "\(status)")
            let audit = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
            #expect(audit.contains("asked for (autoupdate rollback)"))

            let missing = try await autoupdate("rollback", "--dir", dir, "--to", "9.9")
            #expect(
                missing.status != 0 && missing.stderr.contains("no kept version 9.9") && missing.stderr.contains("kept: 3.0, 4.0"),
                "\(missing.stderr)")

            // While the app runs (it holds the folder's run lock), a rollback is refused and changes nothing.
            let launcher = try Launcher(
                filepath: "bin/sleeper", url: server.baseURL.absoluteString, folder: scenario.folder,
                download: .forTests(maxRetries: 0, caFile: TestPKI.caFile))
            try Data("#!/bin/sh\nexec sleep 600\n".utf8).write(to: scenario.appFolder.appending(path: "bin/sleeper"))
            try FileManager.default.setAttributes(
                [.posixPermissions: 0o755], ofItemAtPath: scenario.appFolder.appending(path: "bin/sleeper").path)
            _ = try await launcher.run(background: true)
            let refused = try await autoupdate("rollback", "--dir", dir, "--to", "3.0")
            #expect(refused.status != 0 && refused.stderr.contains("is running: stop it (or its watch) first"), "\(refused.stderr)")
            #expect(scenario.folder.status().installed == "2.0")
            _ = await launcher.processTerminate()
        }
    }

    @Test("as a non-root user, with a read-only folder in the release: rollback and status")
    func unprivileged() async throws {
        let scenario = try UpdateScenario()
        func app(_ version: String) -> [String: UpdateScenario.Content] {
            var tree = Self.app(version)
            tree["share/notes.txt"] = .text("notes of \(version)\n")
            tree["share"] = .folder(mode: 0o555)
            return tree
        }
        try scenario.publish(app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            _ = try await updater(scenario, server).update()
            for version in ["2.0", "3.0"] {
                try scenario.publish(app(version), version: version)
                func update() async throws {
                    let prepared = try #require(try await updater(scenario, server).prepare())
                    let kept = try await updater(scenario, server).installOnTrial(prepared)
                    try updater(scenario, server).confirmTrial(kept, keeping: 2)
                }
                try await update()
            }
        }
        try Unprivileged.give(scenario.work.url)
        let dir = scenario.appFolder.path
        let back = try await Unprivileged.run(BuiltProducts.cli, ["rollback", "--dir", dir])
        #expect(back.status == 0 && back.stdout.contains("rolled back 3.0 → 2.0"), "\(back.stdout)\(back.stderr)")
        #expect(try scenario.appFiles() == UpdateScenario.snapshot(app("2.0")))
        let status = try await Unprivileged.run(BuiltProducts.cli, ["status", "--dir", dir, "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"kept\":[\"1.0\",\"3.0\"]"), "\(status.stdout)\(status.stderr)")
    }
}
