import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

private func updater(_ scenario: UpdateScenario, _ url: URL, trust: TrustPolicy = TrustPolicy()) throws -> Updater {
    try Updater(
        folder: scenario.folder, url: UpdateURL(url.absoluteString),
        configuration: .forTests(trust: trust),
        logger: Logger(label: "test"))
}

private func release(_ version: String) -> [String: Content] {
    ["bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755), "VERSION": .text(version)]
}

private func installed(_ scenario: UpdateScenario) -> String? {
    scenario.folder.readVersionDoc().value?.description
}

/// What the installed files say they are.
private func installedFiles(_ scenario: UpdateScenario) -> String? {
    try? String(contentsOf: scenario.appFolder.appending(path: "VERSION"), encoding: .utf8)
}

/// Signs the server's `version.txt` by hand, trusted until `expires`.
private func signVersion(_ scenario: UpdateScenario, with key: Minisign.SecretKey, expires: Date, app: String? = nil) throws {
    let text = try Data(contentsOf: scenario.serverFolder.appending(path: "version.txt"))
    var prehash = Minisign.Prehash()
    prehash.update([UInt8](text))
    let signature = try Minisign.sign(
        prehash: prehash.finalize(), with: key,
        trustedComment: ReleaseComment.make(file: "version.txt", timestamp: Date(timeIntervalSinceNow: -60), expires: expires, app: app))
    try Data(signature.fileText.utf8).write(to: scenario.serverFolder.appending(path: "version.txt.minisig"))
}

/// The audit's findings about what decides an install: only what the server announces now (and
/// its signature names) is installed, under that version, held to the launcher's trust policy.
@Suite("The server's word: queue, trust, identity, sizes")
struct ServerWordTests {
    @Test("a version announced before its archive exists does not stay queued; a withdrawn release never labels another (D1)")
    func cdnLag() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(release("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL).update()
            // version.txt reaches the CDN before the archive does.
            try Data("3.0\n".utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            try FileManager.default.removeItem(at: scenario.serverFolder.appending(path: "project.zip"))
            let missing = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL).update() }
            #expect(missing?.httpStatus == 404)
            #expect(scenario.folder.readQueue().value == nil, "a version whose archive failed is not kept")

            // The publisher withdraws 3.0 and ships 2.0, then 2.1.
            try scenario.publish(release("2.0"), version: "2.0")
            #expect(try await updater(scenario, server.baseURL).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(installed(scenario) == "2.0" && installedFiles(scenario) == "2.0")
            try scenario.publish(release("2.1"), version: "2.1")
            #expect(try await updater(scenario, server.baseURL).update() == .updated(from: try Version("2.0"), to: try Version("2.1")))
            #expect(installed(scenario) == "2.1" && installedFiles(scenario) == "2.1")
        }
    }

    @Test("a queued version the server no longer announces is dropped by the next check of the server (D1)")
    func staleQueue() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(release("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL).update()
            try Data("5.0\n".utf8).write(to: URL(fileURLWithPath: scenario.folder.path(of: ".queue")))
            // The seed's check answers from the queue, without a request …
            #expect(try await updater(scenario, server.baseURL).check().fromQueue)
            // … an update asks the server, which announces 1.0: nothing to do, and the hint goes.
            #expect(try await updater(scenario, server.baseURL).update() == .upToDate(try Version("1.0")))
            #expect(scenario.folder.readQueue().value == nil)
        }
    }

    @Test("with a pinned key, one forged version.txt does not freeze the client (D1)")
    func forgedVersion() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let trust = TrustPolicy(publicKeys: [key.publicKey])
        try scenario.publish(release("1.0"), version: "1.0", signedWith: key)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL, trust: trust).update()
            try Data("99.0\n".utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            let forged = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL, trust: trust).update() }
            #expect(forged?.message.contains("not for 99.0") == true, "\(forged?.message ?? "")")
            #expect(scenario.folder.readQueue().value == nil)
            try scenario.publish(release("2.0"), version: "2.0", signedWith: key)
            #expect(
                try await updater(scenario, server.baseURL, trust: trust).update()
                    == .updated(from: try Version("1.0"), to: try Version("2.0")))
        }
    }

    @Test("the launcher's trust policy travels to the app's own check, and freshness is checked again at install (D2)")
    func trustTravels() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let trust = TrustPolicy(publicKeys: [key.publicKey], requireFreshVersion: true)
        try scenario.publish(release("1.0"), version: "1.0", signedWith: key, versionExpiresIn: .seconds(3600))
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL, trust: trust).update()
            let launcher = UpdateContext(
                filepath: scenario.folder.path(of: "bin/app"), url: try UpdateURL(server.baseURL.absoluteString), parentPID: getpid(),
                folder: scenario.folder, caFile: TestPKI.caFile, trust: trust)
            let inApp = try #require(try UpdateContext.fromEnvironment(launcher.environment))
            #expect(inApp.trust == trust)

            // A withdrawn release, its signed version.txt expired: the app's check refuses it.
            try scenario.publish(release("2.0"), version: "2.0", signedWith: key)
            try signVersion(scenario, with: key, expires: Date(timeIntervalSinceNow: -10))
            let expired = await #expect(throws: AutoupdateError.self) { try await inApp.checkNew() }
            #expect(expired?.message.contains("expired at") == true, "\(expired?.message ?? "")")
            #expect(scenario.folder.readQueue().value == nil)
            // Queued anyway (by a check without the policy): the launcher's update still refuses.
            try Data("2.0\n".utf8).write(to: URL(fileURLWithPath: scenario.folder.path(of: ".queue")))
            await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL, trust: trust).update() }
            #expect(installed(scenario) == "1.0")

            // Fresh at the check, expired by the install: refused then. The signature lives a
            // little longer than a prepare takes: 2 s, more on a loaded machine (bounded).
            let staging = try updater(scenario, server.baseURL, trust: trust)
            var prepared: PreparedUpdate?
            var expiry = Date()
            for lifetime in [2.0, 5, 15] where prepared == nil {
                expiry = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + lifetime).rounded(.down))
                try signVersion(scenario, with: key, expires: expiry)
                do {
                    prepared = try await staging.prepare()
                } catch let error as AutoupdateError where error.message.contains("expired") && lifetime < 15 {
                    continue
                }
            }
            let fresh = try #require(prepared)
            #expect(fresh.freshUntil == expiry)
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 0.1))
            let late = await #expect(throws: AutoupdateError.self) { try await staging.install(fresh) }
            #expect(late?.message.contains("has expired since") == true, "\(late?.message ?? "")")
            #expect(installed(scenario) == "1.0" && installedFiles(scenario) == "1.0")
        }
    }

    @Test("a server version longer than a version file holds is 'Server invalid', never installed (D11)")
    func overlongVersion() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(release("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL).update()
            let long = "1" + String(repeating: ".0", count: 2600) + "\n"
            #expect(long.utf8.count > Version.maximumTextLength)
            try Data(long.utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            #expect(try await updater(scenario, server.baseURL).check().outcome == .serverInvalid)
            #expect(try await updater(scenario, server.baseURL).update() == .serverInvalid(installed: try Version("1.0")))
            #expect(installed(scenario) == "1.0")
        }
    }

    @Test("a release signed for another app is refused; the URL's last path component is the default identity")
    func appIdentity() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        try scenario.publish(release("1.0"), version: "1.0", signedWith: key, app: "alpha", in: "beta")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let beta = server.url("beta/")
            let other = await #expect(throws: AutoupdateError.self) {
                try await updater(scenario, beta, trust: TrustPolicy(publicKeys: [key.publicKey])).update()
            }
            #expect(other?.message.contains("is for the app 'alpha', not for 'beta'") == true, "\(other?.message ?? "")")
            #expect(installed(scenario) == nil)
            let pinned = TrustPolicy(publicKeys: [key.publicKey], app: "alpha")
            #expect(try await updater(scenario, beta, trust: pinned).update() == .updated(from: .zero, to: try Version("1.0")))

            // A signature that names no app: refused by a pinned client, accepted by one that is not.
            try scenario.publish(release("2.0"), version: "2.0", signedWith: key, in: "beta")
            let unnamed = await #expect(throws: AutoupdateError.self) { try await updater(scenario, beta, trust: pinned).update() }
            #expect(unnamed?.message.contains("names no app") == true, "\(unnamed?.message ?? "")")
            #expect(
                try await updater(scenario, beta, trust: TrustPolicy(publicKeys: [key.publicKey])).update()
                    == .updated(
                        from: try Version("1.0"), to: try Version("2.0")))
        }
    }

    @Test("a signed release's size and unpacked bytes cap the download and the extraction exactly")
    func signedSizes() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let trust = TrustPolicy(publicKeys: [key.publicKey])
        try scenario.publish(release("1.0"), version: "1.0", signedWith: key)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL, trust: trust).update()
            let published = try scenario.publish(
                release("2.0").merging(["big.bin": .bytes(Fixtures.randomBytes(count: 300_000, seed: 3))]) { $1 },
                version: "2.0", signedWith: key)
            let archive = scenario.serverFolder.appending(path: "project.zip")
            let handle = try FileHandle(forWritingTo: archive)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(count: 1_000_000))
            try handle.close()
            let longer = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL, trust: trust).update() }
            #expect(longer?.code == .sizeLimitExceeded)
            #expect(longer?.message.contains("limit of \(published.bytes) bytes") == true, "\(longer?.message ?? "")")
            #expect(server.requests(for: "/project.zip").count == 2, "the longer body was refused on its announced length")

            // A signature that says the files hold 10 bytes: the extraction stops there.
            try scenario.publish(release("2.0"), version: "2.0")
            let signature = try Minisign.sign(
                prehash: try Minisign.prehash(ofFile: archive.path), with: key,
                trustedComment: ReleaseComment.make(file: "project.zip", version: try Version("2.0"), unpacked: 10))
            try Data(signature.fileText.utf8).write(to: scenario.serverFolder.appending(path: "project.zip.minisig"))
            let bomb = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL, trust: trust).update() }
            #expect(bomb?.code == .sizeLimitExceeded)
            #expect(bomb?.message.contains("limit of 10 bytes") == true, "\(bomb?.message ?? "")")
            #expect(installed(scenario) == "1.0")
        }
    }

    @Test("a legacy (Ed) signature by minisign -l is checked on the streamed archive")
    func legacySignature() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let keyFile = scenario.work.url.appending(path: "release.key")
        try Data(key.fileText.utf8).write(to: keyFile)
        let trust = TrustPolicy(publicKeys: [key.publicKey])
        func publishLegacy(_ version: String) async throws {
            try scenario.publish(
                release(version).merging(["data.bin": .bytes(Fixtures.randomBytes(count: 200_000, seed: 8))]) { $1 }, version: version)
            let sign = try await ChildProcess.run(
                "/usr/bin/minisign",
                [
                    "-S", "-l", "-s", keyFile.path, "-m", scenario.serverFolder.appending(path: "project.zip").path,
                    "-t", "timestamp:\(Int(Date().timeIntervalSince1970))\tfile:project.zip\tversion:\(version)\thashed",
                ])
            try #require(sign.status == 0, "\(sign.stderr)")
        }
        try await publishLegacy("1.0")
        let signature = try Minisign.Signature(
            text: String(contentsOf: scenario.serverFolder.appending(path: "project.zip.minisig"), encoding: .utf8))
        #expect(signature.algorithm == .legacy)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await updater(scenario, server.baseURL, trust: trust).update() == .updated(from: .zero, to: try Version("1.0")))
            try await publishLegacy("2.0")
            // One byte changed after signing, the length kept.
            var bytes = try Data(contentsOf: scenario.serverFolder.appending(path: "project.zip"))
            bytes[bytes.count / 2] ^= 0x40
            try bytes.write(to: scenario.serverFolder.appending(path: "project.zip"))
            let altered = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL, trust: trust).update() }
            #expect(
                altered?.code == .signature || altered?.code == .checksumMismatch || altered?.code == .corruptArchive,
                "\(altered?.message ?? "")")
            #expect(installed(scenario) == "1.0")
        }
    }

    @Test("bookkeeping lives in the update folder; a 0.1 audit trail is moved there; logs never follow a planted symlink")
    func bookkeeping() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(release("1.0"), version: "1.0")
        // A folder made by autoupdate 0.1: its audit trail at the top level.
        try Data("{\"event\":\"old\"}\n".utf8).write(to: scenario.appFolder.appending(path: "autoupdate-audit.jsonl"))
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL).update()
            let names = try FileManager.default.contentsOfDirectory(atPath: scenario.appFolder.path).sorted()
            #expect(names == [".pyautodownloads", "VERSION", "bin", "filelist.txt", "version.txt", "version_check.log"])
            let audit = try String(contentsOf: URL(fileURLWithPath: scenario.folder.auditLogPath), encoding: .utf8)
            #expect(audit.hasPrefix("{\"event\":\"old\"}\n") && audit.contains(#""decision":"installed""#))
            #expect(scenario.folder.auditLogPath.hasPrefix(scenario.folder.updateDirectory + "/"))

            // A symlink planted in place of the check log: refused, its target untouched.
            let outside = scenario.work.url.appending(path: "outside.txt")
            try Data("keep\n".utf8).write(to: outside)
            try FileManager.default.removeItem(at: scenario.appFolder.appending(path: "version_check.log"))
            try FileManager.default.createSymbolicLink(
                at: scenario.appFolder.appending(path: "version_check.log"), withDestinationURL: outside)
            let refused = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server.baseURL).check() }
            #expect(refused?.message.contains("version_check.log': it is a symlink") == true, "\(refused?.message ?? "")")
            #expect(try String(contentsOf: outside, encoding: .utf8) == "keep\n")
        }
    }

    @Test("temporaries left by a kill during an atomic write are removed by the next update (D13)")
    func staleTemporaries() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(release("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server.baseURL).update()
            let app = scenario.appFolder
            // As AtomicFile names them: `.NAME.tmp-N` (so `..queue.tmp-N` for `.queue`).
            for name in [".version.txt.tmp-123", ".filelist.txt.tmp-9", "..queue.tmp-7", "..queue.tmp-8", ".mydata.tmp-1"] {
                try Data("x".utf8).write(to: app.appending(path: name))
            }
            let old = Date(timeIntervalSinceNow: -600)
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: app.appending(path: "..queue.tmp-8").path)
            _ = try await updater(scenario, server.baseURL).update()
            let left = try FileManager.default.contentsOfDirectory(atPath: app.path).filter { $0.contains(".tmp-") }.sorted()
            // A fresh `.queue` temporary may be a concurrent check's; the app's own file is the app's.
            #expect(left == ["..queue.tmp-7", ".mydata.tmp-1"])
        }
    }
}
