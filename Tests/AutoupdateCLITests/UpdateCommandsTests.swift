import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

@Suite("CLI: check, update, publish, recover")
struct UpdateCommandsTests {
    @Test("publish, then check and update from a local HTTPS server")
    func endToEnd() async throws {
        let scenario = try UpdateScenario()
        let source = scenario.work.url.appending(path: "v1")
        try UpdateScenario.write(["bin/app": .text("#!/bin/sh\necho one\n", mode: 0o755), "data.txt": .text("1\n")], to: source)
        let published = try await autoupdate("publish", source.path, "--version", "1.0", "--out", scenario.serverFolder.path)
        #expect(published.status == 0, "\(published.stderr)")
        #expect(
            published.stdout.hasPrefix(
                "published 1.0 on stable at 100%: \(scenario.serverFolder.path)/releases/1.0/project.zip (3 entries"),
            "\(published.stdout)")
        #expect(published.stdout.hasSuffix("\(scenario.serverFolder.path)/version.txt: announces 1.0\n"))
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            let check = try await autoupdate("check", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(check.stdout == "update available: 0.0.0 → 1.0\n")
            #expect(check.status == 0)
            let update = try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(update.status == 0, "\(update.stderr)")
            #expect(update.stdout == "updated 0.0.0 → 1.0\n")
            #expect(update.stderr.contains("installing 1.0"), "plain progress lines when stderr is not a terminal")
            let again = try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(again.stdout == "up to date: 1.0\n")
            #expect(try await autoupdate("recover", "--dir", dir).stdout == "nothing to recover\n")
        }
    }

    @Test("failures exit 1 with one line naming the cause")
    func failures() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(["a.txt": .text("a")], version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let untrusted = try await autoupdate("update", "--url", url, "--dir", scenario.appFolder.path)
            #expect(untrusted.status == 1)
            #expect(
                untrusted.stderr.split(separator: "\n").last?.hasPrefix("autoupdate: error: downloading \(url)release.json: TLS failed")
                    == true)
            try Data("not-a-version".utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            let invalid = try await autoupdate("check", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile)
            #expect(invalid.status == 1)
            #expect(invalid.stderr.contains("the server's version.txt is not a valid version"))
            // The library marks it for attention at info; the command shows it as a warning by
            // default, and not at all with --log-level error.
            let warning = invalid.stderr.split(separator: "\n").first { $0.contains("warning") && $0.contains("not a valid version") }
            #expect(warning != nil, "\(invalid.stderr)")
            #expect(warning?.contains("autoupdate.attention") == false, "the marker itself is not shown")
            let quiet = try await autoupdate(
                "check", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile, "--log-level", "error")
            #expect(!quiet.stderr.contains("warning"), "\(quiet.stderr)")
        }
        let badURL = try await autoupdate("check", "--url", "ftp://example.com/", "--dir", scenario.appFolder.path)
        #expect(badURL.status == 2)
        #expect(badURL.stderr.contains("scheme 'ftp'"))
        for command in ["check", "update"] {
            let badPort = try await autoupdate(command, "--url", "https://127.0.0.1:99999/", "--dir", scenario.appFolder.path)
            #expect(badPort.status == 2, "\(command): \(badPort.stderr)")
            #expect(
                badPort.stderr
                    == "autoupdate: error: the update URL 'https://127.0.0.1:99999/' has the port 99999; a port is a number from 1 to 65535\n"
            )
        }
        let badArchive = try await autoupdate("update", "--url", "https://127.0.0.1:1/", "--archive", "app.rar")
        #expect(badArchive.status == 1)
        #expect(badArchive.stderr.contains("must end with .zip, .tar.gz or .tar.bz2"))
        let badVersion = try await autoupdate(
            "publish", scenario.work.path, "--version", "x.y", "--out", scenario.work.url.appending(path: "o").path)
        #expect(badVersion.status == 2)
    }
}
