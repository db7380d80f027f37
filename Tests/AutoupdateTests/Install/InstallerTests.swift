import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

private func updater(_ scenario: UpdateScenario, _ server: TestHTTPSServer) throws -> Updater {
    try Updater(
        folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
        configuration: .forTests(),
        logger: Logger(label: "test"))
}

private func exists(_ scenario: UpdateScenario, _ path: String) -> Bool {
    var info = stat()
    return lstat(scenario.appFolder.appending(path: path).path, &info) == 0
}

private func read(_ scenario: UpdateScenario, _ path: String) -> String? {
    try? String(contentsOf: scenario.appFolder.appending(path: path), encoding: .utf8)
}

/// The install's edges the audit found: what filelist.txt says and what the disk holds disagree,
/// trees change shape, paths grow long, journals lie.
@Suite("Installer: trees that change shape, long paths, lying journals")
struct InstallerTests {
    @Test("a folder listed without its '/' keeps the app's files in it (D6)")
    func folderListedWithoutSlash() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(["bin/app": .text("1.0\n"), "data/seed.txt": .text("seed\n")], version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server).update()
            // A list as pyautoupdate-era tools wrote it: the folder, not its files.
            try Data("bin/app\ndata\n".utf8).write(to: scenario.appFolder.appending(path: "filelist.txt"))
            try Data("the user's\n".utf8).write(to: scenario.appFolder.appending(path: "data/user.db"))
            try scenario.publish(["bin/app": .text("2.0\n")], version: "2.0")
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(read(scenario, "data/user.db") == "the user's\n")
            #expect(read(scenario, "bin/app") == "2.0\n")
        }
    }

    @Test("a release that turns a folder into a symlink installs (lib/ → lib -> lib64) (D7)")
    func folderBecomesSymlink() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(
            ["lib/a.so": .text("a 1\n"), "lib/sub/b.so": .text("b 1\n"), "lib/empty": .folder(mode: 0o750)], version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server).update()
            try scenario.publish(["lib": .symlink("lib64"), "lib64/a.so": .text("a 2\n")], version: "2.0")
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scenario.appFolder.appending(path: "lib").path) == "lib64")
            #expect(read(scenario, "lib/a.so") == "a 2\n")
            // And back: the symlink becomes a folder again.
            try scenario.publish(["lib/a.so": .text("a 3\n")], version: "3.0")
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("2.0"), to: try Version("3.0")))
            #expect(read(scenario, "lib/a.so") == "a 3\n")
            #expect(!exists(scenario, "lib64"))
        }
    }

    @Test("a folder holding a file the app made is not replaced: refused, naming the file (D7)")
    func folderWithAppFileNotReplaced() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(["lib/a.so": .text("a 1\n")], version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server).update()
            try Data("mine\n".utf8).write(to: scenario.appFolder.appending(path: "lib/user.conf"))
            try scenario.publish(["lib": .symlink("lib64"), "lib64/a.so": .text("a 2\n")], version: "2.0")
            let before = try scenario.appSnapshot()
            let refused = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server).update() }
            #expect(refused?.code == .install)
            #expect(refused?.message.contains("'lib/user.conf' in it is not in filelist.txt") == true, "\(refused?.message ?? "")")
            #expect(try scenario.appSnapshot() == before)
        }
    }

    @Test("paths whose backup would be longer than PATH_MAX install, update and leave no journal (D8)")
    func pathsBeyondPathMax() async throws {
        let scenario = try UpdateScenario()
        // Long enough that its path in the backup folder (APP/.pyautodownloads/backup-UUID/…)
        // passes 4096 bytes, short enough that the published source (WORK/src-V-UUID/…, 41 bytes
        // longer than APP) still names it.
        let app = scenario.appFolder.path
        let target = 4096 - app.count - 52
        var components: [String] = []
        var length = "file.txt".count
        while length + 201 <= target {
            components.append(String(repeating: "d", count: 200))
            length += 201
        }
        if target - length - 1 > 0 {
            components.append(String(repeating: "e", count: target - length - 1))
        }
        let deep = (components + ["file.txt"]).joined(separator: "/")
        let backupPath = scenario.folder.updateDirectory + "/backup-" + UUID().uuidString + "/" + deep
        #expect(backupPath.utf8.count > 4096 && (app + "/" + deep).utf8.count < 4096 - 40)
        try scenario.publish([deep: .text("1.0\n"), "app": .text("1.0\n")], version: "1.0", archive: "project.tar.gz")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let client = try Updater(
                folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
                configuration: .forTests(archive: ArchiveName("project.tar.gz")),
                logger: Logger(label: "test"))
            _ = try await client.update()
            try scenario.publish([deep: .text("2.0\n"), "app": .text("2.0\n")], version: "2.0", archive: "project.tar.gz")
            #expect(try await client.update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(!client.hasInterruptedInstall)
            try scenario.publish(["app": .text("3.0\n")], version: "3.0", archive: "project.tar.gz")
            #expect(try await client.update() == .updated(from: try Version("2.0"), to: try Version("3.0")))
            #expect(!client.hasInterruptedInstall)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory).filter {
                $0.hasPrefix("backup-") || $0.hasPrefix("staging-")
            }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    @Test(
        "a journal naming paths outside the app folder is refused, nothing is touched; the app still starts (D12)",
        arguments: [
            #"{"version":"9.0","staging":"staging-x","backup":"backup-y","oldEntries":["../outside.txt"],"newEntries":[],"createdFolders":[]}"#,
            #"{"version":"9.0","staging":"../../outside-folder","backup":"backup-y","oldEntries":[],"newEntries":[],"createdFolders":[]}"#,
            #"{"version":"9.0","staging":"staging-x","backup":"backup-y","oldEntries":[],"newEntries":["/tmp/x"],"createdFolders":["a/../../b"]}"#,
            #"{"version":"9.0","staging":"staging-x","backup":"backup-y","oldEntries":[],"newEntries":[],"createdFolders":[],"previousFileList":["version.txt"]}"#,
            "{ not json",
        ])
    func lyingJournal(journal: String) async throws {
        let scenario = try UpdateScenario()
        try UpdateScenario.write(
            ["app.sh": .text("#!/bin/sh\necho started\n", mode: 0o755), "version.txt": .text("1.0\n")], to: scenario.appFolder)
        try UpdateScenario.write(["outside.txt": .text("keep\n"), "outside-folder/x": .text("keep\n")], to: scenario.work.url)
        try FileManager.default.createDirectory(atPath: scenario.folder.updateDirectory, withIntermediateDirectories: true)
        try Data(journal.utf8).write(to: URL(fileURLWithPath: scenario.folder.updateDirectory + "/journal.json"))
        let outside = try TreeSnapshot(scenario.work.url).filtering { !$0.hasPrefix("app") }
        let client = try Updater(folder: scenario.folder, url: UpdateURL("https://127.0.0.1:1/"), logger: Logger(label: "test"))
        let refused = await #expect(throws: AutoupdateError.self) { try await client.recover() }
        #expect(refused?.code == .install)
        #expect(try TreeSnapshot(scenario.work.url).filtering { !$0.hasPrefix("app") } == outside)
        // Whatever the journal says, it cannot stop the installed version from starting.
        let launcher = try Launcher(filepath: "app.sh", url: "https://127.0.0.1:1/", folder: scenario.folder)
        #expect(try await launcher.run() == 0)
        #expect(try TreeSnapshot(scenario.work.url).filtering { !$0.hasPrefix("app") } == outside)
    }
}
