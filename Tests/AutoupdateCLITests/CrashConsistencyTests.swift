@testable import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Logging
import Testing

/// An update of ~2000 files killed with SIGKILL at many moments: after recovery the app is always
/// exactly the old version or exactly the new one, and a later update completes.
@Suite("Crash consistency of the installer", .ownThread)
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

    /// An app folder's own files, or a kept tree's: no layout or bookkeeping file.
    static func contents(_ folder: URL) throws -> TreeSnapshot {
        let layout = AppLayout()
        let skipped: Set<String> = [layout.updateDir, layout.versionCheckLog, layout.queueUpdate, layout.versionDoc, layout.fileList]
        return try TreeSnapshot(folder).filtering { !skipped.contains(String($0.split(separator: "/").first ?? "")) }
    }

    @Test(
        "a rollback (autoupdate rollback, and a trial's at the next start) killed at each named step and at random moments: exactly the version before with its kept version whole, or exactly the one put back with the one it replaced kept and marked bad"
    )
    func rollbackKilled() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.tree(1, scale: 20), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let installed = try await autoupdate("update", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile)
            try #require(installed.status == 0, "\(installed.stderr)")
            try scenario.publish(Self.tree(2, scale: 20), version: "2.0")
            // v2 installed on trial with v1 kept: as `watch` leaves it during a health window.
            let updater = Updater(
                folder: scenario.folder, url: try UpdateURL(url),
                configuration: .forTests(),
                logger: Logger(label: "test"))
            let prepared = try #require(try await updater.prepare())
            _ = try #require(try await updater.installOnTrial(prepared))
        }
        let v1 = try UpdateScenario.snapshot(Self.tree(1, scale: 20))
        let v2 = try UpdateScenario.snapshot(Self.tree(2, scale: 20))
        let pristine = scenario.appFolder
        #expect(try Self.contents(pristine) == v2)
        #expect(try Self.contents(pristine.appending(path: ".pyautodownloads/previous-1.0")) == v1)

        /// After recovery: v2 with v1 kept (`back` false), or v1 with v2 kept and marked bad.
        func expectWhole(_ app: URL, back: Bool, explicit: Bool, _ label: String) throws {
            let folder = AppFolder(path: app.path)
            let kept = app.appending(path: ".pyautodownloads")
            #expect(!FileManager.default.fileExists(atPath: kept.appending(path: "journal.json").path), "\(label): the journal remains")
            if back {
                #expect(try folder.readVersionDoc().value?.description == "1.0" && Self.contents(app) == v1, "\(label): not exactly v1")
                #expect(folder.readBadVersions().map(\.description) == ["2.0"], "\(label): 2.0 not marked bad")
                #expect(!FileManager.default.fileExists(atPath: kept.appending(path: "previous-1.0").path), "\(label)")
                if explicit {
                    #expect(try Self.contents(kept.appending(path: "previous-2.0")) == v2, "\(label): 2.0 not kept whole")
                }
            } else {
                #expect(try folder.readVersionDoc().value?.description == "2.0" && Self.contents(app) == v2, "\(label): not exactly v2")
                #expect(folder.readBadVersions().isEmpty, "\(label)")
                #expect(try Self.contents(kept.appending(path: "previous-1.0")) == v1, "\(label): the kept 1.0 is not whole")
            }
        }
        func copy(_ name: String) async throws -> URL {
            let app = scenario.work.url.appending(path: name)
            try await shell("cp -a '\(pristine.path)' '\(app.path)'", in: scenario.work.url)
            return app
        }
        func rollback(_ app: URL) -> [String] { ["rollback", "--dir", app.path] }
        /// The trial's rollback, by the next start: `run` decides the trial (no starts left), then starts the app.
        func run(_ app: URL) -> [String] { ["run", "bin/app", "--url", "https://127.0.0.1:9/", "--dir", app.path, "--update", "never"] }

        var outcomes = (before: 0, back: 0)
        for explicit in [true, false] {
            for step in InstallStep.allCases where !step.rawValue.hasPrefix("rollback-") {
                let label = "\(explicit ? "rollback" : "trial") killed at \(step.rawValue)"
                let app = try await copy("\(explicit ? "explicit" : "trial")-\(step.rawValue)")
                let killed = try await ChildProcess.run(
                    BuiltProducts.cli, explicit ? rollback(app) : run(app), environment: ["AUTOUPDATE_TEST_KILL_AT_STEP": step.rawValue])
                try #require(killed.status == SIGKILL, "\(label): not killed: \(killed.stderr)")
                let recovered = try await autoupdate("recover", "--dir", app.path)
                #expect(recovered.status == 0, "\(label): \(recovered.stderr)")
                if explicit {
                    try expectWhole(app, back: step.isCommitted, explicit: true, label)
                } else {
                    // The trial's record finishes what the kill interrupted, before the app starts.
                    let ran = try await autoupdate(run(app))
                    #expect(ran.stdout == "1\n", "\(label): \(ran.stderr)")
                    try expectWhole(app, back: true, explicit: false, label)
                    #expect(!FileManager.default.fileExists(atPath: app.appending(path: ".pyautodownloads/trial.json").path), "\(label)")
                }
            }
        }
        // At random moments (most land in the process's start or after its end: both must hold).
        let clock = ContinuousClock()
        let timing = try await copy("timing")
        let started = clock.now
        #expect(try await autoupdate(rollback(timing)).status == 0)
        let whole = clock.now - started
        var random = SeededRandom(seed: 2612)
        for iteration in 0..<6 {
            let app = try await copy("random-\(iteration)")
            let child = try LiveProcess(BuiltProducts.cli, rollback(app))
            try await Task.sleep(for: whole * Double.random(in: 0.3...1.1, using: &random))
            child.signal(SIGKILL)
            _ = try await child.waitForExit()
            #expect(try await autoupdate("recover", "--dir", app.path).status == 0)
            let back = AppFolder(path: app.path).readVersionDoc().value?.description == "1.0"
            if back { outcomes.back += 1 } else { outcomes.before += 1 }
            try expectWhole(app, back: back, explicit: true, "random kill \(iteration)")
            // Either way, the kept version installs: another rollback goes the other way.
            let again = try await autoupdate(rollback(app))
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try Self.contents(app) == (back ? v2 : v1), "random kill \(iteration): the kept version did not install whole")
        }
        print("rollback crash test: \(outcomes.before) random kills left the version before, \(outcomes.back) the one put back")
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
            for iteration in 0..<10 {
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
