@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// An update of ~2000 files killed with SIGKILL at many moments: after recovery the app is always
/// exactly the old version or exactly the new one, and a later update completes.
@Suite("Crash consistency of the installer")
struct CrashConsistencyTests {
    /// v1 and v2 share 1000 files, change 500, and each has 500 of its own; a file of v1 is a
    /// folder in v2 (its rollback must put the file back where the folder was).
    static func tree(_ version: Int, scale: Int = 500) -> [String: UpdateScenario.Content] {
        var tree: [String: UpdateScenario.Content] = [:]
        for index in 0..<(2 * scale) {
            tree["common/d\(index % 20)/f\(index).txt"] = .text("common \(index)\n")
        }
        for index in 0..<scale {
            tree["changed/d\(index % 10)/f\(index).txt"] = .text("version \(version) of \(index)\n")
            tree["only\(version)/d\(index % 10)/f\(index).txt"] = .text("only in \(version): \(index)\n")
        }
        tree["bin/app"] = .text("#!/bin/sh\necho \(version)\n", mode: 0o755)
        if version == 1 {
            tree["plugin"] = .text("a file in 1\n")
        } else {
            tree["plugin/main.txt"] = .text("a folder in 2\n")
        }
        tree["big.bin"] = .bytes(Fixtures.randomBytes(count: scale << 11, seed: UInt64(version)))
        return tree
    }

    /// The app folder after recovery: exactly v1, or exactly v2.
    static func expectWhole(_ app: URL, v1: TreeSnapshot, new: Bool, _ label: String) throws {
        let after = try TreeSnapshot(app).filtering { path in
            ![".pyautodownloads", "version_check.log", ".queue"].contains(String(path.split(separator: "/")[0]))
        }
        let folder = AppFolder(path: app.path)
        let version = folder.readVersionDoc().value?.description
        if new {
            #expect(version == "2.0", "\(label): version \(version ?? "nil")")
            #expect(after.filtering { $0.hasPrefix("only2/") }.nodes.count == 20 && after.nodes["only1"] == nil, "\(label): not exactly v2")
            #expect(after.nodes["plugin/main.txt"] != nil, "\(label)")
        } else {
            let differing = Set(after.nodes.keys).union(v1.nodes.keys).filter { after.nodes[$0] != v1.nodes[$0] }.sorted()
            #expect(differing.isEmpty, "\(label): not exactly v1: \(differing.prefix(10))")
            #expect(version == "1.0", "\(label): version \(version ?? "nil")")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.updateDirectory + "/journal.json"), "\(label): the journal remains")
    }

    @Test(
        "killed at each named step of the install, and of the rollback recovery runs: recovery leaves exactly v1 (before the commit) or v2 (from it on)",
        arguments: [false, true])
    func killedAtEachStep(differential: Bool) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        // Differentially, the files v2 shares with v1 stay in place: the journal names them, and
        // neither the install nor a rollback moves them.
        let release: ReleaseOptions = differential ? ReleaseOptions() : .withoutIndex
        let mode = differential ? ["--differential", "always"] : ["--differential", "never"]
        try scenario.publish(Self.tree(1, scale: 10), version: "1.0", release: release)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let installed = try await autoupdate("update", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile)
            try #require(installed.status == 0, "\(installed.stderr)")
            let v1 = try scenario.appSnapshot()
            try scenario.publish(Self.tree(2, scale: 10), version: "2.0", release: release)
            /// A copy of the pristine v1 app, and an update of it killed at `step`.
            func killedUpdate(at step: InstallStep, copy name: String) async throws -> URL {
                let app = scenario.work.url.appending(path: "app-\(name)")
                try await shell("cp -a '\(scenario.appFolder.path)' '\(app.path)'", in: scenario.work.url)
                let killed = try await ChildProcess.run(
                    BuiltProducts.cli, ["update", "--url", url, "--dir", app.path, "--ca-file", TestPKI.caFile] + mode,
                    environment: ["AUTOUPDATE_TEST_KILL_AT_STEP": step.rawValue])
                try #require(killed.status == SIGKILL, "not killed at \(step.rawValue): \(killed.stderr)")
                return app
            }

            for step in InstallStep.allCases where !step.rawValue.hasPrefix("rollback-") {
                let app = try await killedUpdate(at: step, copy: step.rawValue)
                if step == .journalWritten {
                    let journal = try Installer(folder: AppFolder(path: app.path), logger: .init(label: "test")).readJournal()
                    #expect(journal?.keptEntries?.count == (differential ? 20 : nil), "\(journal?.keptEntries ?? [])")
                }
                let recovered = try await autoupdate("recover", "--dir", app.path)
                #expect(recovered.status == 0, "\(step.rawValue): \(recovered.stderr)")
                try Self.expectWhole(app, v1: v1, new: step.isCommitted, step.rawValue)
                if step == .synced || step == .committed {
                    // Either side of the commit, the app starts: `run` finds nothing left to recover.
                    let ran = try await autoupdate("run", "bin/app", "--url", url, "--dir", app.path, "--update", "never")
                    #expect(ran.stdout == (step.isCommitted ? "2\n" : "1\n"), "\(ran.stderr)")
                }
            }
            // Recovery's own rollback, killed at each of its steps: the next recovery still finishes it.
            for step in InstallStep.allCases where step.rawValue.hasPrefix("rollback-") {
                let app = try await killedUpdate(at: .newEntriesMoved, copy: "before-" + step.rawValue)
                let killed = try await ChildProcess.run(
                    BuiltProducts.cli, ["recover", "--dir", app.path], environment: ["AUTOUPDATE_TEST_KILL_AT_STEP": step.rawValue])
                try #require(killed.status == SIGKILL, "not killed at \(step.rawValue): \(killed.stderr)")
                let recovered = try await autoupdate("recover", "--dir", app.path)
                #expect(recovered.status == 0, "\(step.rawValue): \(recovered.stderr)")
                try Self.expectWhole(app, v1: v1, new: false, step.rawValue)
            }
        }
    }

    @Test("killed at random moments, recovery leaves exactly v1 or exactly v2")
    func killedAnywhere() async throws {
        // On tmpfs: thousands of file creations per iteration; a SIGKILL tests atomicity, which
        // does not depend on the disk.
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.tree(1), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            // The pristine v1 install every iteration starts from.
            let installed = try await autoupdate("update", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile)
            try #require(installed.status == 0, "\(installed.stderr)")
            let v1 = try scenario.appSnapshot()
            try scenario.publish(Self.tree(2), version: "2.0")

            // Calibrate: how long a whole update takes, and its install phase. The fastest of
            // three: a cold first run takes several times longer, and kills timed by it would
            // mostly land after the update had finished.
            let clock = ContinuousClock()
            var whole = Duration.seconds(3600)
            var install = Duration.seconds(3600)
            for run in 0..<3 {
                let calibration = scenario.work.url.appending(path: "calibration-\(run)")
                try await shell("cp -a '\(scenario.appFolder.path)' '\(calibration.path)'", in: scenario.work.url)
                let started = clock.now
                let timed = try LiveProcess(
                    BuiltProducts.cli, ["update", "--url", url, "--dir", calibration.path, "--ca-file", TestPKI.caFile])
                var installStarted = started
                for await line in timed.stderrLines where line.hasPrefix("installing") { installStarted = clock.now }
                #expect(try await timed.waitForExit() == 0)
                whole = min(whole, clock.now - started)
                install = min(install, clock.now - installStarted)
            }
            print("crash consistency: a whole update takes \(whole), its install \(install)")

            var random = SeededRandom(seed: 2026)
            var outcomes = (old: 0, new: 0)
            for iteration in 0..<16 {
                let app = scenario.work.url.appending(path: "app-\(iteration)")
                try await shell("cp -a '\(scenario.appFolder.path)' '\(app.path)'", in: scenario.work.url)
                let child = try LiveProcess(BuiltProducts.cli, ["update", "--url", url, "--dir", app.path, "--ca-file", TestPKI.caFile])
                if iteration % 2 == 0 {
                    // Anywhere: during the check, the download, the extraction or the install.
                    try await Task.sleep(for: whole * Double.random(in: 0...1.1, using: &random))
                } else {
                    // Within the install: wait for the child to say so, then some of its length,
                    // biased to the end, where the commit point is.
                    for await line in child.stderrLines where line.hasPrefix("installing") { break }
                    try await Task.sleep(for: install * Double.random(in: 0.4...1.2, using: &random))
                }
                child.signal(SIGKILL)
                _ = try await child.waitForExit()

                let recovered = try await autoupdate("recover", "--dir", app.path)
                #expect(recovered.status == 0, "iteration \(iteration): \(recovered.stderr)")
                let folder = AppFolder(path: app.path)
                // Off the cooperative pool: thousands of files, and the whole suite runs beside it.
                let after = try await onDedicatedThread { try TreeSnapshot(app) }.filtering { path in
                    ![".pyautodownloads", "version_check.log", ".queue"].contains(String(path.split(separator: "/")[0]))
                }
                let version = folder.readVersionDoc().value?.description
                if after == v1 {
                    outcomes.old += 1
                    #expect(version == "1.0", "iteration \(iteration): v1 files with version.txt \(version ?? "nil")")
                } else {
                    outcomes.new += 1
                    let v2Files = after.filtering { $0.hasPrefix("only2/") }.nodes.count
                    #expect(
                        version == "2.0" && v2Files == 510 && after.nodes["only1"] == nil,
                        "iteration \(iteration): neither v1 nor v2 after recovery (version \(version ?? "nil"))")
                }
                if iteration % 4 == 3 {
                    // A later update completes from whatever state the crash left.
                    let finished = try await autoupdate("update", "--url", url, "--dir", app.path, "--ca-file", TestPKI.caFile)
                    #expect(finished.status == 0, "iteration \(iteration): \(finished.stderr)")
                    #expect(folder.readVersionDoc().value?.description == "2.0")
                }
                try await onDedicatedThread { try FileManager.default.removeItem(at: app) }
            }
            print("crash consistency: \(outcomes.old) kills left v1, \(outcomes.new) left v2, none a mix")
        }
    }
}
