@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import InMemoryLogging
import Logging
import Testing

typealias Content = UpdateScenario.Content

/// Version 1.0 and 2.0 of a small app: 2.0 changes a file, drops one, adds one, adds a symlink,
/// and moves a folder's content.
enum SampleApp {
    static let v1: [String: Content] = [
        "bin/app": .text("#!/bin/sh\necho 1.0\n", mode: 0o755),
        "lib/common.txt": .text("the same in both\n"),
        "lib/old-only.txt": .text("only in 1.0\n"),
        "share/doc/readme.txt": .text("1.0 readme\n"),
        "old-folder/inside.txt": .text("goes away with its folder\n"),
    ]
    static let v2: [String: Content] = [
        "bin/app": .text("#!/bin/sh\necho 2.0\n", mode: 0o755),
        "bin/tool": .symlink("app"),
        "lib/common.txt": .text("the same in both\n"),
        "lib/new-only.txt": .text("new in 2.0\n"),
        "share/doc/readme.txt": .text("2.0 readme\n"),
        "new-folder/deep/inside.txt": .text("new folder\n"),
    ]

    /// What the app's own files look like with `tree` installed.
    static func snapshot(_ tree: [String: Content]) throws -> TreeSnapshot {
        try UpdateScenario.snapshot(tree)
    }
}

func makeUpdater(
    _ scenario: UpdateScenario, _ server: TestHTTPSServer, archive: String = "project.zip", caFile: String? = TestPKI.caFile,
    logger: Logger = Logger(label: "test")
) throws -> Updater {
    try Updater(
        folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
        configuration: .forTests(archive: ArchiveName(archive), maxRetries: 1, caFile: caFile),
        logger: logger)
}

@Suite("Updater: the update pipeline against the HTTPS test server")
struct UpdaterTests {
    @Test("installs into an empty folder, then updates 1.0 → 2.0", arguments: ["project.zip", "project.tar.gz", "project.tar.bz2"])
    func fullUpdate(archive: String) async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0", archive: archive)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let updater = try makeUpdater(scenario, server, archive: archive)
            #expect(try await updater.update() == .updated(from: .zero, to: Version("1.0")))
            #expect(try scenario.appFiles() == SampleApp.snapshot(SampleApp.v1))

            // The app writes its own data between updates; updates never touch it.
            try Data("user data\n".utf8).write(to: scenario.appFolder.appending(path: "lib/user-data.txt"))
            try scenario.publish(SampleApp.v2, version: "2.0", archive: archive)
            #expect(try await updater.update() == .updated(from: Version("1.0"), to: Version("2.0")))

            let files = try scenario.appFiles().filtering { $0 != "lib/user-data.txt" }
            let differences = files.differences(from: try SampleApp.snapshot(SampleApp.v2))
            #expect(differences.isEmpty, "\(differences)")
            let app = scenario.appFolder
            #expect(try String(contentsOf: app.appending(path: "lib/user-data.txt"), encoding: .utf8) == "user data\n")
            #expect(!FileManager.default.fileExists(atPath: app.appending(path: "old-folder").path), "an emptied old folder goes")
            #expect(try String(contentsOf: app.appending(path: "version.txt"), encoding: .utf8) == "2.0\n")
            #expect(
                try String(contentsOf: app.appending(path: "filelist.txt"), encoding: .utf8)
                    == "bin/app\nbin/tool\nlib/common.txt\nlib/new-only.txt\nnew-folder/deep/inside.txt\nshare/doc/readme.txt\n")
            #expect(!FileManager.default.fileExists(atPath: app.appending(path: ".queue").path))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory)
                .filter { $0.hasPrefix("staging-") || $0.hasPrefix("backup-") || $0 == "journal.json" }
            #expect(leftovers.isEmpty, "\(leftovers)")
            guard case .valid(let log) = scenario.folder.readCheckLog() else {
                Issue.record("the check log is not valid")
                return
            }
            #expect(log.map(\.outcome) == [.newVersion(try Version("1.0")), .newVersion(try Version("2.0"))])
            #expect(log.map(\.old) == [.zero, try Version("1.0")])
        }
    }

    @Test("a server folder made by hand, as pyautoupdate's docs describe, and an app folder from pyautoupdate")
    func pyautoupdateLayout() async throws {
        let scenario = try UpdateScenario()
        // The publisher's side, by hand: a zip of the new files and version.txt.
        try UpdateScenario.write(
            ["main.py": .text("print('1.1')\n"), "helpers/util.py": .text("X = 1\n")], to: scenario.work.url.appending(path: "new"))
        try await shell("cd new && zip -qr ../server/project.zip . && printf '1.1' > ../server/version.txt", in: scenario.work.url)
        // The app folder as pyautoupdate 1.0 leaves it (its log starts each line with a newline).
        try UpdateScenario.write(
            [
                "main.py": .text("print('1.0')\n"), "obsolete.py": .text("old\n"), "version.txt": .text("1.0"),
                "filelist.txt": .text("main.py\nobsolete.py\n"),
                "version_check.log": .text(
                    "\nOld 0.9|New 1.0|Time 2017-06-09 00:29:38.123456\nOld 1.0|Up to date|Time 2017-06-10 10:00:00.000001"),
            ], to: scenario.appFolder)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let updater = try makeUpdater(scenario, server)
            #expect(try await updater.update() == .updated(from: Version("1.0"), to: Version("1.1")))
        }
        let files = try scenario.appFiles()
        #expect(files.nodes.keys.sorted() == ["helpers", "helpers/util.py", "main.py"])
        #expect(files.nodes["main.py"] == .file(mode: 0o644, bytes: Data("print('1.1')\n".utf8)))
        guard case .valid(let log) = scenario.folder.readCheckLog() else {
            Issue.record("the log written by pyautoupdate and then by us is not valid")
            return
        }
        #expect(log.count == 3)
        #expect(log.last?.outcome == .newVersion(try Version("1.1")))
    }

    struct Fault: CustomTestStringConvertible, Sendable {
        let label: String
        let path: String
        let faults: [TestHTTPSServer.Fault]
        let code: AutoupdateError.Code
        var testDescription: String { label }
    }

    static let faults: [Fault] = [
        Fault(label: "version.txt missing (404)", path: "version.txt", faults: [.status(404)], code: .httpStatus),
        Fault(label: "version.txt: 503 with Retry-After", path: "version.txt", faults: [.status(503, retryAfter: "30")], code: .httpStatus),
        Fault(label: "archive missing (404)", path: "project.zip", faults: [.status(404)], code: .httpStatus),
        Fault(label: "archive: server error (500)", path: "project.zip", faults: [.status(500)], code: .httpStatus),
        Fault(label: "archive: connection reset at once, every time", path: "project.zip", faults: [.reset(after: 0)], code: .network),
        Fault(label: "archive: endless body", path: "project.zip", faults: [.endless], code: .corruptArchive),
        Fault(
            label: "archive: redirect to plain http", path: "project.zip", faults: [.redirect(to: "http://127.0.0.1:9/project.zip")],
            code: .network),
    ]

    @Test("every server fault leaves the app folder byte for byte as it was", arguments: faults)
    func serverFaults(_ fault: Fault) async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            try scenario.publish(SampleApp.v2, version: "2.0")
            let before = try scenario.appSnapshot()
            server.inject(fault.faults, at: fault.path)
            await expectFailure(fault.code) {
                _ = try await makeUpdater(scenario, server).update()
            }
            #expect(try scenario.appSnapshot() == before)
        }
    }

    @Test("a corrupt archive and an untrusted certificate leave the app as it was")
    func corruptArchiveAndUntrustedCertificate() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            try scenario.publish(SampleApp.v2, version: "2.0")
            let before = try scenario.appSnapshot()
            await expectFailure(.tls, containing: "not trusted") {
                _ = try await makeUpdater(scenario, server, caFile: nil).update()
            }
            #expect(try scenario.appSnapshot() == before)
            try Data(String(repeating: "garbage ", count: 1000).utf8).write(to: scenario.serverFolder.appending(path: "project.zip"))
            await expectFailure(.corruptArchive, containing: "not a zip archive") {
                _ = try await makeUpdater(scenario, server).update()
            }
            #expect(try scenario.appSnapshot() == before)
        }
    }

    @Test("an invalid server version is logged, kept for inspection and ignored")
    func serverInvalid() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let before = try scenario.appSnapshot()
            try Data("banana\n".utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            let logs = InMemoryLogHandler()
            let updater = try makeUpdater(scenario, server, logger: Logger(label: "test") { _ in logs })
            #expect(try await updater.checkNew() == false)
            #expect(try await updater.update() == .serverInvalid(installed: Version("1.0")))
            #expect(try scenario.appSnapshot() == before)
            let dump = scenario.folder.serverInvalidDumpPath
            #expect(try String(contentsOfFile: dump, encoding: .utf8) == "banana\n")
            #expect(scenario.folder.readCheckLog().value?.last?.outcome == .serverInvalid)
            // Logged at info, marked for a person's attention (the CLI shows it as a warning).
            #expect(
                logs.entries.contains {
                    $0.level == .info && $0.metadata[Logger.attentionKey] == "true"
                        && $0.message.description.contains("not a valid version")
                })
            #expect(!logs.entries.contains { $0.level > .info }, "the library logs at info and below")
        }
    }

    @Test("an older server version is never installed")
    func noDowngrade() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v2, version: "2.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let before = try scenario.appSnapshot()
            try scenario.publish(SampleApp.v1, version: "1.5")
            #expect(try await makeUpdater(scenario, server).update() == .upToDate(Version("2.0")))
            #expect(try scenario.appSnapshot() == before)
            #expect(scenario.folder.readCheckLog().value?.last?.outcome == .upToDate)
        }
    }

    @Test("a repeat check costs a 304; a queued version needs no request")
    func conditionalAndQueue() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            #expect(server.requests(for: "version.txt").first?.header("If-None-Match") == nil)
            let repeated = try await makeUpdater(scenario, server).check()
            #expect(repeated.notModified, "the update's own check left a validator: this one is a 304")
            #expect(server.requests(for: "version.txt").last?.header("If-None-Match") != nil)
            #expect(repeated.outcome == .upToDate)
            try scenario.publish(SampleApp.v2, version: "2.0")
            let changed = try await makeUpdater(scenario, server).check()
            #expect(!changed.notModified)
            #expect(changed.available == (try Version("2.0")))

            try Data("3.0\n".utf8).write(to: scenario.appFolder.appending(path: ".queue"))
            let requestsBefore = server.requests.count
            #expect(try await makeUpdater(scenario, server).checkNew())
            #expect(server.requests.count == requestsBefore, "a valid queue answers without a request")
        }
    }

    @Test("a corrupted version.txt is a warning and counts as 0.0.0")
    func corruptedVersionDoc() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try Data("not a version".utf8).write(to: scenario.appFolder.appending(path: "version.txt"))
        guard case .corrupted(let reason) = scenario.folder.readVersionDoc() else {
            Issue.record("expected a corrupted condition")
            return
        }
        #expect(reason.contains("not a valid PEP 440 version"))
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let logs = InMemoryLogHandler()
            let result = try await makeUpdater(scenario, server, logger: Logger(label: "test") { _ in logs }).check()
            #expect(result.installed == .zero)
            #expect(result.available == (try Version("1.0")))
            #expect(logs.entries.filter { $0.metadata[Logger.attentionKey] == "true" }.count == 1)
            #expect(!logs.entries.contains { $0.level > .info }, "the library logs at info and below")
        }
    }

    @Test("files the app made are never replaced: such an update is refused before anything moves")
    func appMadeFilesAreKept() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            try Data("made by the app\n".utf8).write(to: scenario.appFolder.appending(path: "lib/new-only.txt"))
            try scenario.publish(SampleApp.v2, version: "2.0")
            let before = try scenario.appSnapshot()
            await expectFailure(.install, containing: "would replace 'lib/new-only.txt', which is not in filelist.txt") {
                _ = try await makeUpdater(scenario, server).update()
            }
            #expect(try scenario.appSnapshot() == before)
        }
    }

    @Test("install is refused while the app runs; the update installs once it has stopped")
    func refusedWhileRunning() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            try scenario.publish(SampleApp.v2, version: "2.0")
            let before = try scenario.appSnapshot()
            var running: FileLock? = try scenario.folder.lockForRunning()
            await expectFailure(.processRunning, containing: "is running") {
                _ = try await makeUpdater(scenario, server).update()
            }
            #expect(try scenario.appSnapshot() == before)
            withExtendedLifetime(running) {}
            running = nil
            #expect(try await makeUpdater(scenario, server).update() == .updated(from: Version("1.0"), to: Version("2.0")))
        }
    }

    @Test("a second updater is refused while one is at work")
    func secondUpdaterRefused() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(SampleApp.v1, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let first = try makeUpdater(scenario, server)
            let prepared = try #require(try await first.prepare())
            await expectFailure(.locked, containing: "another update") {
                _ = try await makeUpdater(scenario, server).update()
            }
            try await first.install(prepared)
            #expect(scenario.folder.readVersionDoc().value == (try Version("1.0")))
        }
    }
}

@Suite("AppFolder: the layout's files")
struct AppFolderFilesTests {
    @Test("the check log validator accepts the seed's lines and refuses anything else")
    func checkLog() throws {
        let scenario = try UpdateScenario()
        let log = scenario.appFolder.appending(path: "version_check.log")
        #expect({ if case .missing = scenario.folder.readCheckLog() { true } else { false } }())
        try Data("".utf8).write(to: log)
        #expect(scenario.folder.readCheckLog().value == [])
        try Data("\nOld 1.0|New 2.0|Time 2026-11-24 21:30:05.123456\nOld 2.0|Up to date|Time t\nOld 2.0|Server invalid|Time t\n".utf8)
            .write(to: log)
        #expect(scenario.folder.readCheckLog().value?.count == 3)
        for bad in ["Old 1.0|New banana|Time t", "Old 1.0|Up to date", "garbage", "Old 1.0|Sideways|Time t", "Old |New 2.0|Time t"] {
            try Data(bad.utf8).write(to: log)
            guard case .corrupted = scenario.folder.readCheckLog() else {
                Issue.record("accepted \(bad)")
                continue
            }
        }
    }

    @Test("the time in the log is UTC, as Python's str(datetime.utcnow()) prints it")
    func pythonTime() {
        #expect(AppFolder.pythonUTCString(Date(timeIntervalSince1970: 1_700_000_000.25)) == "2023-11-14 22:13:20.250000")
    }

    @Test(
        "file list entries that leave the folder or name a layout file corrupt the list",
        arguments: [
            "../etc/passwd", "/etc/passwd", "version.txt", ".pyautodownloads/journal.json", "a/../../b",
        ])
    func fileListRefuses(line: String) throws {
        let scenario = try UpdateScenario()
        try Data("ok.txt\n\(line)\n".utf8).write(to: scenario.appFolder.appending(path: "filelist.txt"))
        guard case .corrupted(let reason) = scenario.folder.readFileList() else {
            Issue.record("accepted \(line)")
            return
        }
        #expect(reason.contains("outside the app folder or reserved"))
    }

    @Test("file list entries are normalized")
    func fileListNormalizes() throws {
        let scenario = try UpdateScenario()
        try Data("./a//b.txt\r\n\ndir/\n\(scenario.appFolder.path)/c.txt\n".utf8).write(
            to: scenario.appFolder.appending(path: "filelist.txt"))
        #expect(scenario.folder.readFileList().value == ["a/b.txt", "dir/", "c.txt"])
    }
}
