@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// Every client rule of the release manifest, against a real HTTPS server serving what
/// ``Publisher`` wrote.
@Suite("Release index: clients on a real server")
struct ReleaseClientTests {
    /// An app folder of its own (several installs share one server), with a fixed install id.
    struct Client {
        let folder: AppFolder
        let channel: String
        let pin: VersionSpecifierSet?
        let trust: TrustPolicy

        init(
            _ scenario: UpdateScenario, _ name: String, channel: String = "stable", pin: String? = nil, installID: String = "client",
            trust: TrustPolicy = TrustPolicy()
        ) throws {
            let path = scenario.work.url.appending(path: "apps/\(name)").path
            folder = AppFolder(path: path)
            try FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
            try Data((installID + "\n").utf8).write(to: URL(fileURLWithPath: folder.updateDirectory + "/install-id"))
            self.channel = channel
            self.pin = try pin.map(VersionSpecifierSet.init)
            self.trust = trust
        }

        func updater(_ server: TestHTTPSServer) throws -> Updater {
            try Updater(
                folder: folder, url: UpdateURL(server.baseURL.absoluteString),
                configuration: .forTests(trust: trust, channel: channel, pin: pin),
                logger: Logger(label: "test"))
        }

        var installed: String? { folder.readVersionDoc().value?.description }
        /// What the installed files say they are.
        var files: String? { try? String(contentsOfFile: folder.path + "/VERSION", encoding: .utf8) }
    }

    static func tree(_ version: String) -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755), "VERSION": .text(version)]
    }

    @discardableResult
    static func publish(
        _ scenario: UpdateScenario, _ version: String, _ options: ReleaseOptions = ReleaseOptions(), key: Minisign.SecretKey? = nil,
        archive: String = "project.zip"
    ) throws -> Publisher.Result {
        try scenario.publish(tree(version), version: version, archive: archive, signedWith: key, release: options)
    }

    static func announced(_ scenario: UpdateScenario) -> String? {
        try? String(contentsOf: scenario.serverFolder.appending(path: "version.txt"), encoding: .utf8)
    }

    @Test("channels, a rollout raised, pins, and version.txt for clients that read only it")
    func channelsRolloutsPins() async throws {
        let scenario = try UpdateScenario()
        try Self.publish(scenario, "1.0")
        try Self.publish(scenario, "1.1", ReleaseOptions(rollout: 0))
        try Self.publish(scenario, "2.0b1", ReleaseOptions(channel: "beta"), archive: "project.tar.gz")
        #expect(Self.announced(scenario) == "1.0\n", "a release at 0 % is not announced to version.txt clients")
        let stable = try Client(scenario, "stable")
        let beta = try Client(scenario, "beta", channel: "beta")
        let pinned = try Client(scenario, "pinned", pin: "~=1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await stable.updater(server).update() == .updated(from: .zero, to: try Version("1.0")))
            let halted = try await stable.updater(server).checkServer()
            #expect(halted.available == nil && halted.index?.decision.reason == .outsideRollout)
            #expect(try await beta.updater(server).update() == .updated(from: .zero, to: try Version("2.0b1")))
            #expect(beta.files == "2.0b1", "the beta's own archive (a .tar.gz) was installed")

            try Publisher.setRollout(of: try Version("1.1"), to: 100, in: scenario.serverFolder.path)
            #expect(Self.announced(scenario) == "1.1\n")
            #expect(try await stable.updater(server).update() == .updated(from: try Version("1.0"), to: try Version("1.1")))
            #expect(try await pinned.updater(server).update() == .updated(from: .zero, to: try Version("1.1")))

            // A stable release overtaking the beta reaches the beta tester; the pin holds at 1.x.
            try Self.publish(scenario, "2.0")
            #expect(try await beta.updater(server).update() == .updated(from: try Version("2.0b1"), to: try Version("2.0")))
            #expect(beta.files == "2.0")
            let held = try await pinned.updater(server).checkServer()
            #expect(held.available == nil && held.index?.decision.reason == .pinnedOut)
            #expect(pinned.installed == "1.1")
        }
        // Every release's archive stays where the index says.
        for version in ["1.0", "1.1", "2.0"] {
            #expect(FileManager.default.fileExists(atPath: scenario.serverFolder.appending(path: "releases/\(version)/project.zip").path))
        }
        #expect(throws: AutoupdateError.self) { try Self.publish(scenario, "2.0") }

        // Each release's manifest is where the index says, with the bytes it names, and lists the tree.
        let index = try #require(try Publisher.readIndex(in: scenario.serverFolder.path))
        let reference = try #require(index.release(try Version("1.1"))?.manifest)
        let bytes = try [UInt8](Data(contentsOf: scenario.serverFolder.appending(path: reference.path)))
        let manifest = try ReleaseManifest.decode(bytes, matching: reference)
        let digest = try SHA256Digest()
        Array("#!/bin/sh\necho 1.1\n".utf8).withUnsafeBytes { digest.update($0) }
        #expect(manifest.version == (try Version("1.1")) && manifest.archive == "project.zip")
        // Zip entries follow each other from the start of the archive.
        let ranges = manifest.files.map { ($0.offset ?? -1, $0.length ?? -1) }
        #expect(ranges.first?.0 == 0 && zip(ranges, ranges.dropFirst()).allSatisfy { $0.0 + $0.1 == $1.0 }, "\(ranges)")
        let described = manifest.files.map { entry in
            var entry = entry
            (entry.offset, entry.length) = (nil, nil)
            return entry
        }
        #expect(
            described == [
                ReleaseManifest.Entry(path: "VERSION", type: .file, mode: 0o644, size: 3, sha256: manifest.files[0].sha256),
                ReleaseManifest.Entry(path: "bin", type: .directory, mode: 0o755),
                ReleaseManifest.Entry(path: "bin/app", type: .file, mode: 0o755, size: 19, sha256: digest.finalize()),
            ])
    }

    @Test("a staged rollout reaches the installs drawn into it, and a version.txt client does not see it early")
    func stagedRollout() async throws {
        let scenario = try UpdateScenario()
        try Self.publish(scenario, "1.0")
        try Self.publish(scenario, "2.0", ReleaseOptions(rollout: 50))
        let version = try Version("2.0")
        let ids = (0..<64).map { "node-\($0)" }
        let policy = { (id: String) in ReleasePolicy(installID: id) }
        let index = try #require(try Publisher.readIndex(in: scenario.serverFolder.path))
        let release = try #require(index.release(version))
        let inside = try #require(ids.first { policy($0).inRollout(release) })
        let outside = try #require(ids.first { !policy($0).inRollout(release) })
        let early = try Client(scenario, "early", installID: inside)
        let late = try Client(scenario, "late", installID: outside)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await early.updater(server).update() == .updated(from: .zero, to: version))
            #expect(try await late.updater(server).update() == .updated(from: .zero, to: try Version("1.0")))
            #expect(Self.announced(scenario) == "1.0\n")
            try Publisher.setRollout(of: version, to: 100, in: scenario.serverFolder.path)
            #expect(try await late.updater(server).update() == .updated(from: try Version("1.0"), to: version))
        }
        let audit = try String(contentsOfFile: late.folder.auditLogPath, encoding: .utf8)
        #expect(audit.contains("\"why\":\"newer\"") && audit.contains("\"rollout\":\"out\"") && audit.contains("\"channel\":\"stable\""))
        #expect(audit.contains("\"serial\":"))
    }

    @Test("a required release is never skipped, and a minimum version makes the update mandatory")
    func requiredAndMinimum() async throws {
        let scenario = try UpdateScenario()
        try Self.publish(scenario, "2.0")
        let client = try Client(scenario, "app")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await client.updater(server).update()
            try Self.publish(scenario, "2.5", ReleaseOptions(required: true))
            try Self.publish(scenario, "3.0")
            do {
                // The prepared update holds the update lock until it goes.
                let updater = try client.updater(server)
                let first = try #require(try await updater.prepare())
                #expect(first.version == (try Version("2.5")) && first.isMandatory && first.decision?.reason == .required)
                try await updater.install(first)
            }
            #expect(try await client.updater(server).update() == .updated(from: try Version("2.5"), to: try Version("3.0")))

            try Self.publish(scenario, "4.0", ReleaseOptions(rollout: 0.001, minimumVersion: try Version("3.5")))
            let result = try await client.updater(server).checkServer()
            #expect(result.available == (try Version("4.0")), "a minimum version reaches installs outside the rollout")
            #expect(result.index?.decision.mandatory == true && result.index?.decision.reason == .minimum)
        }
    }

    @Test("a yank stops installs; with a signed index, installs running it move down, and the floor comes with them")
    func yank() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let trust = TrustPolicy(publicKeys: [key.publicKey])
        try Self.publish(scenario, "1.0", key: key)
        try Self.publish(scenario, "2.0", key: key)
        let signed = try Client(scenario, "signed", trust: trust)
        let unsigned = try Client(scenario, "unsigned")
        let fresh = try Client(scenario, "fresh")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await signed.updater(server).update() == .updated(from: .zero, to: try Version("2.0")))
            #expect(try await unsigned.updater(server).update() == .updated(from: .zero, to: try Version("2.0")))
            try Publisher.yank(try Version("2.0"), reason: "eats data", in: scenario.serverFolder.path, secretKey: key)
            #expect(Self.announced(scenario) == "1.0\n")

            #expect(try await signed.updater(server).update() == .updated(from: try Version("2.0"), to: try Version("1.0")))
            #expect(signed.files == "1.0")
            #expect(signed.folder.readHighestVersion() == (try Version("1.0")))
            #expect(signed.folder.readBadVersions().contains(try Version("2.0")))
            // Without a key a yank only stops new installs.
            #expect(try await unsigned.updater(server).update() == .upToDate(try Version("2.0")))
            #expect(try await fresh.updater(server).update() == .updated(from: .zero, to: try Version("1.0")))

            // A newer release after the yank installs as usual.
            try Self.publish(scenario, "2.1", key: key)
            #expect(try await signed.updater(server).update() == .updated(from: try Version("1.0"), to: try Version("2.1")))
        }
        let audit = try String(contentsOfFile: signed.folder.auditLogPath, encoding: .utf8)
        #expect(audit.contains("\"why\":\"yanked\""))
    }

    @Test(
        "with a key pinned: an older signed index is refused (replay), an unsigned one too, and a vanished one is not followed to version.txt"
    )
    func replayAndUnsigned() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let client = try Client(scenario, "app", trust: TrustPolicy(publicKeys: [key.publicKey]))
        let server = scenario.serverFolder
        try Self.publish(scenario, "1.0", key: key)
        let old = try ["release.json", "release.json.minisig"].map { try Data(contentsOf: server.appending(path: $0)) }
        try await TestHTTPSServer.with(root: server) { https in
            _ = try await client.updater(https).update()
            try Publisher.yank(try Version("1.0"), in: server.path, secretKey: key)  // a newer serial, seen by the client
            try Self.publish(scenario, "1.1", key: key)
            _ = try await client.updater(https).update()
            #expect(client.installed == "1.1")

            let before = try TreeSnapshot(URL(fileURLWithPath: client.folder.path))
            // The server replays the first index, validly signed.
            for (name, data) in zip(["release.json", "release.json.minisig"], old) {
                try data.write(to: server.appending(path: name))
            }
            let replay = await #expect(throws: AutoupdateError.self) { try await client.updater(https).update() }
            #expect(replay?.code == .rollback && replay?.message.contains("older than serial") == true, "\(replay?.message ?? "")")

            // An unsigned index with a key pinned.
            try FileManager.default.removeItem(at: server.appending(path: "release.json.minisig"))
            let unsigned = await #expect(throws: AutoupdateError.self) { try await client.updater(https).update() }
            #expect(unsigned?.code == .signature && unsigned?.message.contains("release.json.minisig is missing") == true)

            // The index gone: version.txt alone is not trusted to stand in for it.
            try FileManager.default.removeItem(at: server.appending(path: "release.json"))
            let gone = await #expect(throws: AutoupdateError.self) { try await client.updater(https).update() }
            #expect(gone?.message.contains("is gone (404) after serial") == true, "\(gone?.message ?? "")")
            #expect(
                try TreeSnapshot(URL(fileURLWithPath: client.folder.path)).filtering {
                    !$0.hasPrefix(".pyautodownloads") && $0 != "version_check.log"
                } == before.filtering { !$0.hasPrefix(".pyautodownloads") && $0 != "version_check.log" })
        }
    }

    @Test("a host that answers release.json with a page is read from version.txt, until an index was seen there")
    func pageForMissingFiles() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(Self.tree("1.0"), version: "1.0")
        let page = scenario.serverFolder.appending(path: "release.json")
        try Data("<!doctype html><title>Not here</title>\n".utf8).write(to: page)
        let client = try Client(scenario, "app")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await client.updater(server).update() == .updated(from: .zero, to: try Version("1.0")))
            try FileManager.default.removeItem(at: page)
            try Self.publish(scenario, "2.0")
            #expect(try await client.updater(server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            try Data("<!doctype html><title>Not here</title>\n".utf8).write(to: page)
            let error = await #expect(throws: AutoupdateError.self) { try await client.updater(server).update() }
            #expect(error?.code == .corruptedFile && error?.message.contains("is not a valid release index") == true)
        }
    }

    @Test("an archive that does not match the index's SHA-256 or size is refused, the app untouched; a 304 costs nothing")
    func lyingServer() async throws {
        let scenario = try UpdateScenario()
        try Self.publish(scenario, "1.0")
        let client = try Client(scenario, "app")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await client.updater(server).update()
            let again = try await client.updater(server).checkServer()
            #expect(again.notModified, "an unchanged release.json costs a 304")
            #expect(server.requests(for: "release.json").last?.header("If-None-Match") != nil)

            let published = try Self.publish(scenario, "2.0")
            let archive = scenario.serverFolder.appending(path: "releases/2.0/project.zip")
            var bytes = try [UInt8](Data(contentsOf: archive))
            // A byte of a file the update needs: the differential fetch fails its SHA-256, the
            // whole archive then fails the index's.
            let manifest = try ReleaseManifest.decode(
                [UInt8](Data(contentsOf: scenario.serverFolder.appending(path: "releases/2.0/manifest.json"))))
            let entry = try #require(manifest.files.first { $0.path == "VERSION" })
            bytes[Int(entry.offset! + entry.length! - 1)] ^= 0xFF
            try Data(bytes).write(to: archive)
            let error = await #expect(throws: AutoupdateError.self) { try await client.updater(server).update() }
            #expect(error?.code == .checksumMismatch || error?.code == .corruptArchive, "\(String(describing: error))")
            #expect(client.installed == "1.0" && client.files == "1.0")
            let log = try String(contentsOfFile: client.folder.auditLogPath, encoding: .utf8)
            #expect(log.contains("\"decision\":\"delta-failed\""), "the differential update was tried first")
            _ = published
            try Data(bytes + [0]).write(to: archive)
            await #expect(throws: AutoupdateError.self) { try await client.updater(server).update() }
            #expect(client.installed == "1.0")
        }
    }
}
