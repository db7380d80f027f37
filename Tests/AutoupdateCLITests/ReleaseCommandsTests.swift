import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// The publishing verbs and the client flags of the release manifest, as a publisher and an
/// operator use them.
@Suite("CLI: publish into release.json, rollout, yank, check --json, --channel, --pin")
struct ReleaseCommandsTests {
    private func app(_ version: String) -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho \"app \(version)\"\n", mode: 0o755)]
    }

    private func source(_ scenario: UpdateScenario, _ version: String) throws -> String {
        let folder = scenario.work.url.appending(path: "src-\(version)")
        try UpdateScenario.write(app(version), to: folder)
        return folder.path
    }

    private struct Report: Decodable {
        let installed: String
        let candidate: String?
        let why: String
        let mandatory: Bool
        let channel: String
        let size: Int64?
        let notes: String?
        let signed: Bool
        let serial: UInt64?
        let index: Bool
        let download: Int64?
        let differential: Bool?
    }

    private func report(_ result: ChildProcess.Result) throws -> Report {
        try #require(result.status == 0, "\(result.stderr)")
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    @Test("publish with a channel, a rollout and notes; rollout; yank; check --json says why")
    func publisherWorkflow() async throws {
        let scenario = try UpdateScenario()
        let out = scenario.serverFolder.path
        let first = try await autoupdate("publish", try source(scenario, "1.0"), "--version", "1.0", "--out", out)
        #expect(first.status == 0, "\(first.stderr)")
        let notes = scenario.work.url.appending(path: "notes.txt")
        try Data("Faster start.\n".utf8).write(to: notes)
        let staged = try await autoupdate(
            "publish", try source(scenario, "2.0"), "--version", "2.0", "--out", out, "--rollout", "0", "--notes", notes.path)
        #expect(staged.status == 0, "\(staged.stderr)")
        #expect(staged.stdout.hasPrefix("published 2.0 on stable at 0%: \(out)/releases/2.0/project.zip"), "\(staged.stdout)")
        #expect(staged.stdout.hasSuffix("\(out)/version.txt: announces 1.0\n"))
        let beta = try await autoupdate(
            "publish", try source(scenario, "2.1b1"), "--version", "2.1b1", "--out", out, "--channel", "beta", "--archive",
            "project.tar.bz2")
        #expect(beta.status == 0, "\(beta.stderr)")

        let again = try await autoupdate("publish", try source(scenario, "2.0"), "--version", "2.0", "--out", out)
        #expect(again.status == 1 && again.stderr.contains("2.0 is already published"), "\(again.stderr)")
        let unknown = try await autoupdate("rollout", "9.9", "50", "--out", out)
        #expect(unknown.status == 1 && unknown.stderr.contains("9.9 is not in"), "\(unknown.stderr)")
        #expect(try await autoupdate("rollout", "2.0", "101", "--out", out).status == 64)

        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let client = ["--url", server.baseURL.absoluteString, "--ca-file", TestPKI.caFile]
            let stableDir = ["--dir", scenario.work.url.appending(path: "stable").path]
            let betaDir = ["--dir", scenario.work.url.appending(path: "beta").path]
            let fresh = try report(try await ChildProcess.run(BuiltProducts.cli, ["check", "--json"] + client + stableDir))
            #expect(fresh.installed == "0.0.0" && fresh.candidate == "1.0" && fresh.why == "newer" && fresh.index && !fresh.signed)
            #expect(fresh.serial != nil && fresh.channel == "stable")
            #expect(try await ChildProcess.run(BuiltProducts.cli, ["update"] + client + stableDir).status == 0)
            let halted = try report(try await ChildProcess.run(BuiltProducts.cli, ["check", "--json"] + client + stableDir))
            #expect(halted.candidate == nil && halted.why == "outside-rollout")
            let text = try await ChildProcess.run(BuiltProducts.cli, ["check"] + client + stableDir)
            #expect(
                text.stdout == "up to date: 1.0 (a newer release is not offered to this install yet: staged rollout)\n", "\(text.stdout)")

            let raised = try await autoupdate("rollout", "2.0", "100", "--out", out)
            #expect(raised.status == 0 && raised.stdout.hasPrefix("2.0 now rolls out to 100% of installs"), "\(raised.stdout)")
            #expect(try String(contentsOfFile: out + "/version.txt", encoding: .utf8) == "2.0\n")
            let ready = try report(try await ChildProcess.run(BuiltProducts.cli, ["check", "--json"] + client + stableDir))
            #expect(ready.candidate == "2.0" && ready.notes == "Faster start.\n" && ready.size != nil && ready.size! > 0)
            #expect(ready.differential == true && ready.download != nil && ready.download! < ready.size!, "only bin/app changed")
            #expect(fresh.differential == false && fresh.download == fresh.size, "nothing installed: the whole archive")

            let betaCheck = try report(
                try await ChildProcess.run(BuiltProducts.cli, ["check", "--json", "--channel", "beta"] + client + betaDir))
            #expect(betaCheck.candidate == "2.1b1" && betaCheck.channel == "beta")
            let pinned = try report(
                try await ChildProcess.run(
                    BuiltProducts.cli, ["check", "--json"] + client + stableDir, environment: ["AUTOUPDATE_PIN": "<2"]))
            #expect(pinned.candidate == nil && pinned.why == "pinned-out", "the launcher's pin applies to an app's own check")

            let yanked = try await autoupdate("yank", "2.0", "--out", out, "--reason", "crashes on start")
            #expect(yanked.status == 0 && yanked.stdout.hasPrefix("yanked 2.0"), "\(yanked.stderr)")
            #expect(try String(contentsOfFile: out + "/version.txt", encoding: .utf8) == "1.0\n")
            let after = try report(try await ChildProcess.run(BuiltProducts.cli, ["check", "--json"] + client + stableDir))
            #expect(after.candidate == nil && after.why == "withdrawn")
        }
        let index = try #require(try Publisher.readIndex(in: out))
        #expect(index.channels == ["stable", "beta", "alpha"])
        #expect(index.release(try Version("2.0"))?.yankReason == "crashes on start")
        #expect(index.release(try Version("2.1b1"))?.path == "releases/2.1b1/project.tar.bz2")
    }

    @Test("a signed index stays signed: rollout or yank without the key is refused, the folder unchanged")
    func signedStaysSigned() async throws {
        let scenario = try UpdateScenario()
        let out = scenario.serverFolder.path
        let key = scenario.work.url.appending(path: "release.key").path
        _ = try await autoupdate("keygen", "--secret-key", key, "--public-key", scenario.work.url.appending(path: "release.pub").path)
        let published = try await autoupdate("publish", try source(scenario, "1.0"), "--version", "1.0", "--out", out, "--secret-key", key)
        #expect(published.status == 0, "\(published.stderr)")
        let before = try TreeSnapshot(scenario.serverFolder)
        let refused = try await autoupdate("yank", "1.0", "--out", out)
        #expect(refused.status == 1 && refused.stderr.contains("is signed; pass --secret-key"), "\(refused.stderr)")
        #expect(try TreeSnapshot(scenario.serverFolder).differences(from: before).isEmpty)
        let minisign = try await ChildProcess.run(
            "/usr/bin/minisign", ["-V", "-p", scenario.work.url.appending(path: "release.pub").path, "-m", out + "/release.json"])
        #expect(minisign.status == 0 && minisign.stdout.contains("file:release.json"), "\(minisign.stdout)\(minisign.stderr)")
    }

    @Test("run --update ask cannot decline an update below a minimum version")
    func mandatoryAtStart() async throws {
        let scenario = try UpdateScenario()
        let out = scenario.serverFolder.path
        _ = try await autoupdate("publish", try source(scenario, "1.0"), "--version", "1.0", "--out", out)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let run = [
                "run", "bin/app", "--url", server.baseURL.absoluteString, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile,
            ]
            #expect(try await autoupdate(run + ["--update", "auto"]).stdout == "app 1.0\n")
            _ = try await autoupdate("publish", try source(scenario, "1.5"), "--version", "1.5", "--out", out)
            let declined = try await autoupdate(run + ["--update", "ask"])
            #expect(declined.stdout == "app 1.0\n" && declined.stderr.contains("declined"), "\(declined.stderr)")
            _ = try await autoupdate("publish", try source(scenario, "2.0"), "--version", "2.0", "--out", out, "--minimum-version", "1.5")
            let forced = try await autoupdate(run + ["--update", "ask"])
            #expect(forced.stderr.contains("update 1.0 → 2.0 is mandatory (minimum): updating"), "\(forced.stderr)")
            #expect(forced.stdout == "app 2.0\n")
        }
    }

    @Test("as a non-root user: publish into the index, roll out, and update from it (install id and serial kept)")
    func unprivileged() async throws {
        let scenario = try UpdateScenario()
        let out = scenario.serverFolder.path
        let v1 = try source(scenario, "1.0")
        let v2 = try source(scenario, "2.0")
        try Unprivileged.give(scenario.work.url)
        func cli(_ arguments: [String]) async throws -> ChildProcess.Result {
            try await Unprivileged.run(BuiltProducts.cli, arguments)
        }
        #expect(try await cli(["publish", v1, "--version", "1.0", "--out", out]).status == 0)
        #expect(try await cli(["publish", v2, "--version", "2.0", "--out", out, "--rollout", "0"]).status == 0)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let update = [
                "update", "--url", server.baseURL.absoluteString, "--dir", scenario.appFolder.path, "--ca-file",
                try Unprivileged.reachable(TestPKI.caFile),
            ]
            let first = try await cli(update)
            #expect(first.status == 0 && first.stdout == "updated 0.0.0 → 1.0\n", "\(first.stderr)")
            #expect(try await cli(["rollout", "2.0", "100", "--out", out]).status == 0)
            let second = try await cli(update)
            #expect(second.status == 0 && second.stdout == "updated 1.0 → 2.0\n", "\(second.stderr)")
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory)
        #expect(kept.contains("install-id") && kept.contains("release-index.json"), "\(kept)")
    }

    @Test("an update killed (SIGKILL) during its full download: the next run reuses the files extracted, and check --json says so")
    func killedDownloadResumes() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        var tree = app("1.0")
        for index in 0..<60 {
            tree["lib/part-\(index).dat"] = .bytes(Fixtures.randomBytes(count: 20_000, seed: UInt64(index)))
        }
        let published = try scenario.publish(tree, version: "1.0", release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let archive = "releases/1.0/project.zip"
            // The first download stalls after most of the archive, until the client is killed.
            server.inject(sequence: [[.stall(after: Int(published.bytes) * 8 / 10)]], at: archive)
            let arguments = ["--url", server.baseURL.absoluteString, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile]
            let child = try LiveProcess(BuiltProducts.cli, ["update"] + arguments)
            // No event tells when the extraction has caught up with the stall: watch the folder
            // it extracts into, within a bound.
            let partial = try #require(
                try await eventually(within: .seconds(30)) {
                    let found = FileManager.default.enumerator(atPath: scenario.folder.updateDirectory)?.allObjects as? [String] ?? []
                    return found.filter { $0.contains("/partial/lib/part-") }.count >= 40 ? found : nil
                })
            #expect(!partial.isEmpty)
            child.signal(SIGKILL)
            #expect(try await child.waitForExit() == SIGKILL)

            let check = try report(try await autoupdate(["check", "--json"] + arguments))
            #expect(check.differential == true && (check.download ?? .max) < published.bytes / 2, "\(check)")
            let resumed = try await autoupdate(["update"] + arguments)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(tree))
            let log = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
            #expect(log.contains("from an interrupted download"), "\(log)")
            #expect(server.requests(for: archive).dropFirst().allSatisfy { $0.header("Range") != nil })
        }
    }

    @Test("a wrong --channel or --pin is a usage error naming it")
    func badFlags() async throws {
        let channel = try await autoupdate("check", "--url", "https://127.0.0.1:1/", "--channel", "Beta!")
        #expect(channel.status == 64 && channel.stderr.contains("--channel Beta!"), "\(channel.stderr)")
        let pin = try await autoupdate("check", "--url", "https://127.0.0.1:1/", "--pin", "~=2")
        #expect(pin.status == 64 && pin.stderr.contains("--pin: '~=2' is not a valid version specifier"), "\(pin.stderr)")
        let noIndex = try await autoupdate("publish", "/tmp", "--version", "1.0", "--out", "/tmp/x", "--no-index", "--rollout", "5")
        #expect(noIndex.status == 64)
    }
}

