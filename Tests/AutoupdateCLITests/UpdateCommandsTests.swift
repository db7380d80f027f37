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
        #expect(published.stdout.hasPrefix("published 1.0: \(scenario.serverFolder.path)/project.zip (3 entries"))
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
            #expect(untrusted.stderr.split(separator: "\n").last?.hasPrefix("autoupdate: error: downloading \(url)version.txt: TLS failed") == true)
            try Data("not-a-version".utf8).write(to: scenario.serverFolder.appending(path: "version.txt"))
            let invalid = try await autoupdate("check", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile)
            #expect(invalid.status == 1)
            #expect(invalid.stderr.contains("the server's version.txt is not a valid version"))
        }
        let badURL = try await autoupdate("check", "--url", "ftp://example.com/", "--dir", scenario.appFolder.path)
        #expect(badURL.status == 2)
        #expect(badURL.stderr.contains("scheme 'ftp'"))
        let badArchive = try await autoupdate("update", "--url", "https://127.0.0.1:1/", "--archive", "app.rar")
        #expect(badArchive.status == 1)
        #expect(badArchive.stderr.contains("must end with .zip, .tar.gz or .tar.bz2"))
        let badVersion = try await autoupdate("publish", scenario.work.path, "--version", "x.y", "--out", scenario.work.url.appending(path: "o").path)
        #expect(badVersion.status == 2)
    }
}

@Suite("Publisher: archives every tool reads")
struct PublisherTests {
    @Test("what tar, unzip and our extractor read equals the source", arguments: ["project.zip", "project.tar.gz", "project.tar.bz2"])
    func roundTrip(archive: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source, hardLinks: false)
        try Data("1.0".utf8).write(to: source.appending(path: "version.txt"))
        let result = try Publisher.publish(source: source.path, version: try Version("2.0"), to: work.url.appending(path: "server").path, archive: try ArchiveName(archive))
        #expect(try String(contentsOf: work.url.appending(path: "server/version.txt"), encoding: .utf8) == "2.0\n")
        let expected = try TreeSnapshot(source).filtering { $0 != "version.txt" }

        try await shell("mkdir ref && \(archive.hasSuffix(".zip") ? "unzip -q server/\(archive) -d ref" : "tar -xf server/\(archive) -C ref")", in: work.url)
        let reference = try TreeSnapshot(work.url.appending(path: "ref"))
        #expect(reference.differences(from: expected).isEmpty, "\(reference.differences(from: expected))")
        _ = try await Extractor().extract(file: result.archive, to: work.url.appending(path: "ours").path)
        let ours = try TreeSnapshot(work.url.appending(path: "ours"))
        #expect(ours.differences(from: expected).isEmpty, "\(ours.differences(from: expected))")
        #expect(result.entries == expected.nodes.count)
    }

    @Test("refuses what clients would refuse")
    func refuses() throws {
        let work = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: work.url.appending(path: "src"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: work.url.appending(path: "src/out").path, withDestinationPath: "../../etc/passwd")
        #expect {
            try Publisher.publish(source: work.url.appending(path: "src").path, version: Version("1.0"), to: work.url.appending(path: "server").path)
        } throws: { error in
            (error as? AutoupdateError)?.message.contains("the symlink 'out' points to '../../etc/passwd', outside the folder") == true
        }
        #expect(!FileManager.default.fileExists(atPath: work.url.appending(path: "server/version.txt").path))
    }
}
