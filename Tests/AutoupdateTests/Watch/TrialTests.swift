import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// A version installed on trial and never confirmed by a watch, as `run` finds it: another start
/// while it has starts left (confirmed when it exits cleanly), else the previous version back
/// before anything starts; a record nobody can use never keeps the app from starting.
@Suite("Trials found by run")
struct TrialTests {
    /// An app that notes its version in `ran.log` and exits 0.
    static func app(_ version: String) -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho \(version) >> \"$AUTOUPDATE_DIR/../ran.log\"\n", mode: 0o755)]
    }

    func updater(_ scenario: UpdateScenario, _ server: TestHTTPSServer) throws -> Updater {
        try Updater(
            folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
            configuration: .forTests(), logger: Logger(label: "test"))
    }

    func ran(_ scenario: UpdateScenario) -> [String] {
        ((try? String(contentsOf: scenario.work.url.appending(path: "ran.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(
            String.init)
    }

    @Test(
        "starts left: run starts the candidate and a clean exit confirms it; none left: run puts the previous version back first",
        arguments: [2, 1])
    func runDecides(starts: Int) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            _ = try await updater(scenario, server).update()
            try scenario.publish(Self.app("2.0"), version: "2.0")
            // A watch installs 2.0 on trial (its first start) and dies before confirming it.
            func installOnTrial() async throws -> PreviousVersion? {
                let prepared = try #require(try await updater(scenario, server).prepare())
                return try await updater(scenario, server).installOnTrial(prepared, starts: starts)
            }
            let kept = try #require(try await installOnTrial())
            #expect(FileManager.default.fileExists(atPath: kept.tree))

            let launcher = try Launcher(
                filepath: "bin/app", url: server.baseURL.absoluteString, folder: scenario.folder,
                download: .forTests(maxRetries: 0, caFile: TestPKI.caFile))
            #expect(try await launcher.run() == 0)
            let trialFile = scenario.folder.updateDirectory + "/trial.json"
            #expect(!FileManager.default.fileExists(atPath: trialFile), "decided either way")
            #expect(!FileManager.default.fileExists(atPath: kept.tree))
            if starts == 2 {
                #expect(ran(scenario) == ["2.0"])
                #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
                #expect(scenario.folder.readBadVersions().isEmpty)
            } else {
                #expect(ran(scenario) == ["1.0"], "the previous version, and only it, ran")
                #expect(scenario.folder.readVersionDoc().value?.description == "1.0")
                #expect(scenario.folder.readBadVersions().map(\.description) == ["2.0"])
            }
        }
    }

    @Test("a trial record that cannot be read is removed, naming why, and the installed version starts")
    func unusableRecord() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            _ = try await updater(scenario, server).update()
            let trialFile = scenario.folder.updateDirectory + "/trial.json"
            for garbage in ["{not json", #"{"candidate":"2.0","previous":"1.0","previousTree":"../../etc","starts":1,"maxStarts":1}"#] {
                try Data(garbage.utf8).write(to: URL(fileURLWithPath: trialFile))
                #expect(try await updater(scenario, server).resolveTrialForStart() == .cleared)
                #expect(!FileManager.default.fileExists(atPath: trialFile))
            }
            let audit = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
            #expect(audit.contains("record-unusable") && audit.contains("trial.json"), "\(audit)")
        }
    }
}
