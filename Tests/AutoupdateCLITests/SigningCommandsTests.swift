import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

@Suite("CLI: keygen, sign, verify, signed publish and update")
struct SigningCommandsTests {
    @Test("the publisher's workflow end to end, and minisign agrees")
    func workflow() async throws {
        let scenario = try UpdateScenario()
        let work = scenario.work.url
        let secret = work.appending(path: "release.key").path
        let pub = work.appending(path: "release.pub").path
        let keygen = try await autoupdate("keygen", "--secret-key", secret, "--public-key", pub)
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: secret)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let again = try await autoupdate("keygen", "--secret-key", secret, "--public-key", pub)
        #expect(again.status == 1 && again.stderr.contains("not overwriting"))

        let source = work.appending(path: "v1")
        try UpdateScenario.write(["bin/app": .text("#!/bin/sh\necho one\n", mode: 0o755)], to: source)
        let published = try await autoupdate(
            "publish", source.path, "--version", "1.0", "--out", scenario.serverFolder.path, "--secret-key", secret, "--expires-in", "3600")
        #expect(published.status == 0, "\(published.stderr)")
        #expect(
            published.stdout.contains(
                "signed: \(scenario.serverFolder.path)/releases/1.0/project.zip.minisig, \(scenario.serverFolder.path)/release.json.minisig and \(scenario.serverFolder.path)/version.txt.minisig"
            ), "\(published.stdout)")
        let tool = try await ChildProcess.run(
            "/usr/bin/minisign", ["-V", "-p", pub, "-m", scenario.serverFolder.appending(path: "project.zip").path])
        #expect(tool.status == 0, "\(tool.stderr)")
        #expect(tool.stdout.contains("file:project.zip\tversion:1.0\tsize:"), "\(tool.stdout)")

        let verify = try await autoupdate("verify", scenario.serverFolder.appending(path: "project.zip").path, "--public-key", pub)
        #expect(verify.status == 0)
        #expect(verify.stdout.hasPrefix("signature OK:"))

        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            let update = try await autoupdate(
                "update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--public-key", pub, "--require-fresh")
            #expect(update.status == 0, "\(update.stderr)")
            #expect(update.stdout == "updated 0.0.0 → 1.0 (signature verified)\n")

            // Re-signed by another key: refused, one line naming the key.
            let otherSecret = work.appending(path: "other.key").path
            _ = try await autoupdate("keygen", "--secret-key", otherSecret, "--public-key", work.appending(path: "other.pub").path)
            try UpdateScenario.write(["bin/app": .text("#!/bin/sh\necho two\n", mode: 0o755)], to: source)
            _ = try await autoupdate(
                "publish", source.path, "--version", "2.0", "--out", scenario.serverFolder.path, "--secret-key", otherSecret)
            let refused = try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--public-key", pub)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("which is not a trusted key"), "\(refused.stderr)")
            #expect(scenario.folder.readVersionDoc().value == (try Version("1.0")))
        }

        let badFlags = try await autoupdate("update", "--url", "https://127.0.0.1:1/", "--require-fresh")
        #expect(badFlags.status == 64)
        #expect(badFlags.stderr.contains("--public-key"))
        let tampered = work.appending(path: "tampered.bin")
        try Data("x".utf8).write(to: tampered)
        try FileManager.default.copyItem(
            atPath: scenario.serverFolder.appending(path: "project.zip.minisig").path, toPath: tampered.path + ".minisig")
        let wrong = try await autoupdate("verify", tampered.path, "--public-key", work.appending(path: "other.pub").path)
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("does not match the file's bytes"))
    }

    @Test("a one-line key holding '/' is a key, not a file name (D14); a CRLF .minisig verifies, as with minisign -V (D15)")
    func keyAndSignatureSpellings() async throws {
        let work = try TemporaryDirectory()
        var key = Minisign.generateKeyPair()
        for _ in 0..<200 where !key.publicKey.base64.contains("/") {
            key = Minisign.generateKeyPair()
        }
        try #require(key.publicKey.base64.contains("/"))
        #expect(try Minisign.PublicKey(fileOrKey: key.publicKey.base64) == key.publicKey)
        let file = work.url.appending(path: "release.bin")
        try Data("release\n".utf8).write(to: file)
        try Data(key.fileText.utf8).write(to: work.url.appending(path: "release.key"))
        #expect(try await autoupdate("sign", file.path, "--secret-key", work.url.appending(path: "release.key").path).status == 0)
        let verified = try await autoupdate("verify", file.path, "--public-key", key.publicKey.base64)
        #expect(verified.status == 0, "\(verified.stderr)")

        let signature = try String(contentsOf: file.appendingPathExtension("minisig"), encoding: .utf8)
        try Data(signature.replacingOccurrences(of: "\n", with: "\r\n").utf8).write(to: file.appendingPathExtension("minisig"))
        let crlf = try await autoupdate("verify", file.path, "--public-key", key.publicKey.base64)
        #expect(crlf.status == 0, "\(crlf.stderr)")
        try Data(key.publicKey.fileText.utf8).write(to: work.url.appending(path: "release.pub"))
        let tool = try await ChildProcess.run(
            "/usr/bin/minisign", ["-V", "-p", work.url.appending(path: "release.pub").path, "-m", file.path])
        #expect(tool.status == 0, "minisign agrees: \(tool.stderr)")
    }
}
