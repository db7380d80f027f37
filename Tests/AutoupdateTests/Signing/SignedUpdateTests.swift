import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

private func signedUpdater(
    _ scenario: UpdateScenario, _ server: TestHTTPSServer, trusting keys: [Minisign.SecretKey], fresh: Bool = false, maxAge: Duration? = nil
) throws -> Updater {
    try Updater(
        folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
        configuration: .forTests(
            maxRetries: 1, trust: TrustPolicy(publicKeys: keys.map(\.publicKey), requireFreshVersion: fresh, maxVersionAge: maxAge)),
        logger: Logger(label: "test"))
}

private func tree(_ version: String) -> [String: UpdateScenario.Content] {
    ["bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755), "data.txt": .text("data \(version)\n")]
}

/// Expects `body` to be refused with `code` and a message containing `text`, the app folder left
/// as it was and no staging folder behind.
private func expectRefused(
    _ scenario: UpdateScenario, code: AutoupdateError.Code = .signature, containing text: String,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async throws {
    let before = try scenario.appSnapshot()
    let error = await #expect(throws: AutoupdateError.self, sourceLocation: sourceLocation) { try await body() }
    #expect(error?.code == code, "\(error?.message ?? "")", sourceLocation: sourceLocation)
    #expect(error?.message.contains(text) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
    #expect(try scenario.appSnapshot() == before, "the app is untouched", sourceLocation: sourceLocation)
    let leftovers =
        (try? FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory))?.filter { $0.hasPrefix("staging-") } ?? []
    #expect(leftovers.isEmpty, sourceLocation: sourceLocation)
}

@Suite("Signed updates: pinned keys, rollback and freeze protection")
struct SignedUpdateTests {
    @Test("a release signed by a pinned key installs; the audit trail names the key")
    func accepted() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        try scenario.publish(tree("1.0"), version: "1.0", signedWith: key)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await signedUpdater(scenario, server, trusting: [key]).update() == .updated(from: .zero, to: try Version("1.0")))
            let audit = try String(contentsOf: URL(fileURLWithPath: scenario.folder.auditLogPath), encoding: .utf8)
            let installed = try #require(audit.split(separator: "\n").last)
            #expect(
                installed.contains(#""decision":"installed""#) && installed.contains(#""keyID":"\#(key.publicKey.keyIDHex)""#),
                "\(installed)")
        }
    }

    @Test("missing, malformed, foreign, altered, or for another version or archive: refused, app untouched")
    func refusals() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let stranger = Minisign.generateKeyPair()
        try scenario.publish(tree("1.0"), version: "1.0", signedWith: key)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await signedUpdater(scenario, server, trusting: [key]).update()
            try scenario.publish(tree("2.0"), version: "2.0", signedWith: key)
            let updater = try signedUpdater(scenario, server, trusting: [key])
            let archive = scenario.serverFolder.appending(path: "project.zip")
            let signatureFile = scenario.serverFolder.appending(path: "project.zip.minisig")
            let good = try Data(contentsOf: signatureFile)
            let goodArchive = try Data(contentsOf: archive)
            func sign(_ comment: String, with signer: Minisign.SecretKey = key) throws {
                let signature = try Minisign.sign(
                    prehash: try Minisign.prehash(ofFile: archive.path), with: signer, trustedComment: comment)
                try Data(signature.fileText.utf8).write(to: signatureFile)
            }

            try FileManager.default.removeItem(at: signatureFile)
            try await expectRefused(scenario, containing: "project.zip.minisig is missing (404)") { _ = try await updater.update() }

            try Data("untrusted comment: x\nRWQ\n".utf8).write(to: signatureFile)
            try await expectRefused(scenario, containing: "not a minisign signature") { _ = try await updater.update() }

            try sign(ReleaseComment.make(file: "project.zip", version: try Version("2.0")), with: stranger)
            try await expectRefused(scenario, containing: "signed by key \(stranger.publicKey.keyIDHex), which is not a trusted key") {
                _ = try await updater.update()
            }

            try sign(ReleaseComment.make(file: "project.zip", version: try Version("1.5")))
            try await expectRefused(scenario, containing: "the signature is for version '1.5', not for 2.0") {
                _ = try await updater.update()
            }

            try sign(ReleaseComment.make(file: "other.zip", version: try Version("2.0")))
            try await expectRefused(scenario, containing: "the signature is for 'other.zip', not for 'project.zip'") {
                _ = try await updater.update()
            }

            try sign("timestamp:1\tfile:project.zip")
            try await expectRefused(scenario, containing: "names no version") { _ = try await updater.update() }

            // Bytes altered after signing, into an archive the extractor accepts: the signature
            // still names 2.0 and project.zip; only its check over the bytes catches it.
            try scenario.publish(tree("2.0").merging(["data.txt": .text("evil 2.0\n")]) { $1 }, version: "2.0")
            try good.write(to: signatureFile)
            try await expectRefused(scenario, containing: "does not match the file's bytes") { _ = try await updater.update() }

            try goodArchive.write(to: archive)
            #expect(try await updater.update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
        }
    }

    @Test("key rotation: a client trusting both keys accepts either; one trusting the old only refuses the new")
    func rotation() async throws {
        let scenario = try UpdateScenario()
        let old = Minisign.generateKeyPair()
        let new = Minisign.generateKeyPair()
        try scenario.publish(tree("1.0"), version: "1.0", signedWith: old)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await signedUpdater(scenario, server, trusting: [old, new]).update()
            try scenario.publish(tree("2.0"), version: "2.0", signedWith: new)
            try await expectRefused(scenario, containing: "not a trusted key") {
                _ = try await signedUpdater(scenario, server, trusting: [old]).update()
            }
            #expect(
                try await signedUpdater(scenario, server, trusting: [old, new]).update()
                    == .updated(from: try Version("1.0"), to: try Version("2.0")))
        }
    }

    @Test("a replayed older release, validly signed, is never installed")
    func replay() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        try scenario.publish(tree("1.5"), version: "1.5", signedWith: key)
        let oldRelease = try FileManager.default.contentsOfDirectory(atPath: scenario.serverFolder.path).map {
            ($0, try Data(contentsOf: scenario.serverFolder.appending(path: $0)))
        }
        try scenario.publish(tree("2.0"), version: "2.0", signedWith: key)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await signedUpdater(scenario, server, trusting: [key]).update()
            for (name, data) in oldRelease { try data.write(to: scenario.serverFolder.appending(path: name)) }
            #expect(
                try await signedUpdater(scenario, server, trusting: [key]).update() == .upToDate(try Version("2.0")), "older than installed"
            )
            // Even when version.txt was set back (a restore from backup, a manual downgrade),
            // the highest version ever installed stays the floor.
            try Data("1.0\n".utf8).write(to: scenario.appFolder.appending(path: "version.txt"))
            try await expectRefused(scenario, code: .rollback, containing: "2.0 was installed here before") {
                _ = try await signedUpdater(scenario, server, trusting: [key]).update()
            }
        }
    }

    @Test("freshness: a current version.txt.minisig passes; expired, missing or too old is refused")
    func freshness() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        try scenario.publish(tree("1.0"), version: "1.0", signedWith: key, versionExpiresIn: .seconds(3600))
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await signedUpdater(scenario, server, trusting: [key], fresh: true).check().available == (try Version("1.0")))
            try? FileManager.default.removeItem(atPath: scenario.folder.path(of: ".queue"))
            let signatureFile = scenario.serverFolder.appending(path: "version.txt.minisig")
            func signVersion(timestamp: Date, expires: Date?) throws {
                let text = try Data(contentsOf: scenario.serverFolder.appending(path: "version.txt"))
                var prehash = Minisign.Prehash()
                prehash.update([UInt8](text))
                let signature = try Minisign.sign(
                    prehash: prehash.finalize(), with: key,
                    trustedComment: ReleaseComment.make(file: "version.txt", timestamp: timestamp, expires: expires))
                try Data(signature.fileText.utf8).write(to: signatureFile)
            }
            try signVersion(timestamp: Date(timeIntervalSinceNow: -7200), expires: Date(timeIntervalSinceNow: -3600))
            try await expectRefused(scenario, containing: "expired at") {
                _ = try await signedUpdater(scenario, server, trusting: [key], fresh: true).check()
            }
            try signVersion(timestamp: Date(timeIntervalSinceNow: -7200), expires: Date(timeIntervalSinceNow: 3600))
            #expect(try await signedUpdater(scenario, server, trusting: [key], fresh: true).check().available != nil)
            try? FileManager.default.removeItem(atPath: scenario.folder.path(of: ".queue"))
            try await expectRefused(scenario, containing: "longer ago than the maximum age of 60 s") {
                _ = try await signedUpdater(scenario, server, trusting: [key], maxAge: .seconds(60)).check()
            }
            try signVersion(timestamp: Date(), expires: nil)
            try await expectRefused(scenario, containing: "names no expiry") {
                _ = try await signedUpdater(scenario, server, trusting: [key], fresh: true).check()
            }
            try FileManager.default.removeItem(at: signatureFile)
            try await expectRefused(scenario, containing: "version.txt.minisig is missing") {
                _ = try await signedUpdater(scenario, server, trusting: [key], fresh: true).check()
            }
        }
    }
}
