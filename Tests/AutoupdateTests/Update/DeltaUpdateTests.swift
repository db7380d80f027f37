import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Logging
import Testing

/// Differential updates end to end on a real HTTPS server: only the changed files' bytes are
/// fetched (with Range), and the installed tree is byte for byte what a full install gives.
@Suite("Differential updates", .ownThread)
struct DeltaUpdateTests {
    /// Letters at random, from which every file takes its own slice (cheap to make, and about as
    /// compressible as text).
    static let pool: [UInt8] = {
        var random = SeededRandom(seed: 7)
        return (0..<(1 << 20)).map { _ in UInt8.random(in: 97...122, using: &random) }
    }()

    static func tree(_ version: String, changed: Bool = false, added: Bool = false) -> [String: UpdateScenario.Content] {
        var tree: [String: UpdateScenario.Content] = [
            "bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755), "link": .symlink("bin/app"), "empty.txt": .text(""),
            "etc": .folder(mode: 0o750),
        ]
        // 2.4 MB of small files: about nine gzip members, three bzip2 streams.
        for index in 0..<150 {
            let start = index * 6_007 % (pool.count - 16_000)
            tree["lib/part-\(index).dat"] = .bytes(Array(pool[start..<(start + 16_000)]))
        }
        tree["big.bin"] = .bytes(Array((0..<40).map { _ in pool[0..<8192] }.joined()))
        if changed { tree["lib/part-7.dat"] = .text("changed in \(version)\n") }
        if added { tree["lib/new-\(version).txt"] = .text("new in \(version)\n") }
        return tree
    }

    func updater(_ scenario: UpdateScenario, _ server: TestHTTPSServer) throws -> Updater {
        try Updater(
            folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
            configuration: .forTests(), logger: Logger(label: "test"))
    }

    func audit(_ scenario: UpdateScenario) -> String {
        (try? String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)) ?? ""
    }

    @Test(
        "one file changed and one added: only their bytes come, and the result is a full install's",
        arguments: ["project.zip", "project.tar.gz", "project.tar.bz2"])
    func delta(archive: String) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.tree("1.0"), version: "1.0", archive: archive, release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            #expect(try await updater(scenario, server).update() == .updated(from: .zero, to: try Version("1.0")))
            let v2 = Self.tree("2.0", changed: true, added: true)
            let published = try scenario.publish(v2, version: "2.0", archive: archive, release: ReleaseOptions())
            let planned = try await updater(scenario, server).plannedDownload(for: try await updater(scenario, server).checkServer())
            #expect(planned?.differential == true)
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v2))

            let requests = server.requests(for: "releases/2.0/\(archive)")
            #expect(!requests.isEmpty && requests.allSatisfy { $0.header("Range") != nil }, "only ranges of the archive are fetched")
            let manifestRequest = Array(server.requests(for: "releases/2.0/manifest.json").suffix(1))  // the update's own
            #expect(
                Set((requests + manifestRequest).map(\.connection)).count == 1,
                "the manifest and every range over one kept-alive connection: \((requests + manifestRequest).map(\.connection))")
            let log = audit(scenario)
            #expect(log.contains("\"decision\":\"delta-staged\""), "\(log)")
            let fetched = log.split(separator: "\n").last { $0.contains("delta-staged") }.flatMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["bytes"] as? Int
            }
            // A zip entry each; a 256 KiB gzip member each; a 900 kB bzip2 stream each (of ~2.4 MB).
            let share = Double(fetched ?? -1) / Double(published.bytes)
            let bound = archive.hasSuffix(".zip") ? 0.05 : archive.hasSuffix(".gz") ? 0.3 : 0.8
            #expect(share > 0 && share < bound, "fetched \(fetched ?? -1) of \(published.bytes) bytes")
            #expect(planned.map { Int($0.bytes) } == fetched, "the plan announced exactly what was fetched")
            print("delta \(archive): fetched \(fetched ?? -1) of \(published.bytes) bytes")
        }
    }

    @Test("unchanged files stay where they are (same inode); a kept previous version is whole, and rolling back to it gives v1")
    func overlay() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        let v1 = Self.tree("1.0")
        try scenario.publish(v1, version: "1.0", release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server).update()
            func inode(_ path: String) throws -> Int? {
                (try FileManager.default.attributesOfItem(atPath: scenario.appFolder.appending(path: path).path)[.systemFileNumber]
                    as? NSNumber)?.intValue
            }
            let unchangedBefore = try inode("lib/part-20.dat")
            let changedBefore = try inode("lib/part-7.dat")
            let v2 = Self.tree("2.0", changed: true, added: true)
            try scenario.publish(v2, version: "2.0", release: ReleaseOptions())
            let updater = try updater(scenario, server)
            // The prepared update holds the update lock until it goes.
            func installKeepingPrevious() async throws -> PreviousVersion? {
                let prepared = try #require(try await updater.prepare())
                return try await updater.installKeepingPrevious(prepared)
            }
            let previous = try #require(try await installKeepingPrevious())
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v2))
            #expect(try inode("lib/part-20.dat") == unchangedBefore, "an unchanged file was moved or copied")
            #expect(try inode("lib/part-7.dat") != changedBefore)
            // The kept version holds copies of the files left in place, not links to them.
            #expect(try TreeSnapshot(URL(fileURLWithPath: previous.tree)) == UpdateScenario.snapshot(v1))
            let keptCopy = try FileManager.default.attributesOfItem(atPath: previous.tree + "/lib/part-20.dat")
            #expect((keptCopy[.systemFileNumber] as? NSNumber)?.intValue != unchangedBefore)
            #expect((keptCopy[.referenceCount] as? NSNumber)?.intValue == 1)
            try await updater.rollBack(to: previous, reason: "test")
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v1))
        }
    }

    @Test("a server that ignores Range, or a damaged installed file: still exactly the new release")
    func fallbacks() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.tree("1.0"), version: "1.0", release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await updater(scenario, server).update()
            let v2 = Self.tree("2.0", changed: true)
            try scenario.publish(v2, version: "2.0", release: ReleaseOptions())
            server.inject([.ignoreRange], at: "releases/2.0/project.zip")
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v2))
            #expect(audit(scenario).contains("\"decision\":\"delta-failed\""))
            #expect(server.requests(for: "releases/2.0/project.zip").contains { $0.header("Range") == nil }, "then the whole archive")

            // A file damaged since it was installed is fetched again, not trusted.
            var bytes = try [UInt8](Data(contentsOf: scenario.appFolder.appending(path: "lib/part-3.dat")))
            bytes[100] ^= 0xFF
            try Data(bytes).write(to: scenario.appFolder.appending(path: "lib/part-3.dat"))
            let v3 = Self.tree("3.0", added: true)
            try scenario.publish(v3, version: "3.0", release: ReleaseOptions())
            #expect(try await updater(scenario, server).update() == .updated(from: try Version("2.0"), to: try Version("3.0")))
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v3))
            #expect(server.requests(for: "releases/3.0/project.zip").allSatisfy { $0.header("Range") != nil })
        }
    }

    @Test(
        "an interrupted full download keeps the files it extracted: the next run fetches only the entries or members it lacks",
        arguments: ["project.zip", "project.tar.gz"])  // (this tree's tar.bz2 is one 900 kB stream: one unit)
    func resumeFull(archive: String) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        let v1 = Self.tree("1.0")
        let published = try scenario.publish(v1, version: "1.0", archive: archive, release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            let path = "releases/1.0/\(archive)"
            let cut = Int(published.bytes) * 7 / 10
            server.inject(sequence: [[.truncate(after: cut)]], at: path)
            let interrupted = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server).update() }
            #expect(interrupted?.code == .network, "\(String(describing: interrupted))")
            #expect(scenario.folder.readVersionDoc().value == nil, "nothing is installed")

            #expect(try await updater(scenario, server).update() == .updated(from: .zero, to: try Version("1.0")))
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v1))
            let requests = server.requests(for: path)
            #expect(requests.count >= 2 && requests.dropFirst().allSatisfy { $0.header("Range") != nil }, "then only ranges")
            let line = audit(scenario).split(separator: "\n").last { $0.contains("delta-staged") }.map(String.init) ?? ""
            let fetched = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["bytes"] as? Int ?? -1
            // What was cut off, and at most the one unit (entry, member) the cut fell in.
            let unit = archive.hasSuffix(".zip") ? 20_000 : 300_000
            #expect(fetched > 0 && fetched <= Int(published.bytes) - cut + unit, "fetched \(fetched) of \(published.bytes) after \(cut)")
            #expect(line.contains("from an interrupted download"), "\(line)")
            print("resumed full download \(archive): \(cut) bytes before the cut, then \(fetched) of \(published.bytes)")
        }
    }

    @Test(
        "an interrupted differential update keeps what it fetched: the next run asks only for the rest (several ranges in one request, or one by one)",
        arguments: [true, false])
    func resume(multipart: Bool) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.tree("1.0"), version: "1.0", release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server async throws -> Void in
            _ = try await updater(scenario, server).update()
            // Two changes far apart in the archive, and bin/app's entry first: three ranges.
            var v2 = Self.tree("2.0")
            v2["lib/part-3.dat"] = .bytes(Array(Self.pool[500..<16_500]))
            v2["lib/part-140.dat"] = .bytes(Array(Self.pool[300_000..<316_000]))
            try scenario.publish(v2, version: "2.0", release: ReleaseOptions())
            let archive = "releases/2.0/project.zip"
            let start = { (header: String?) in header.flatMap { Int64($0.dropFirst(6).split(separator: "-")[0]) } ?? -1 }
            if multipart {
                // One request for the three; cut after 2,000 bytes, inside the second part.
                server.inject(sequence: [[.truncate(after: 2000)]], at: archive)
            } else {
                // A server that sends the whole file for several ranges (as S3 does): one by one,
                // the second cut after 2,000 of its ~10,000 bytes.
                server.inject(
                    sequence: [[.singleRangesOnly], [.singleRangesOnly], [.singleRangesOnly, .truncate(after: 2000)]], at: archive)
            }
            let interrupted = await #expect(throws: AutoupdateError.self) { try await updater(scenario, server).update() }
            #expect(interrupted?.code == .network, "\(String(describing: interrupted))")
            #expect(scenario.folder.readVersionDoc().value == (try Version("1.0")), "nothing installed")
            #expect(audit(scenario).contains("\"decision\":\"delta-interrupted\""))
            let first = server.requests(for: archive)
            try #require(first.count == (multipart ? 1 : 3), "\(first.map { $0.header("Range") })")
            let asked = try #require(first[0].header("Range"))
            #expect(asked.split(separator: ",").count == 3, "the three ranges in one request: \(asked)")

            #expect(try await updater(scenario, server).update() == .updated(from: try Version("1.0"), to: try Version("2.0")))
            #expect(try scenario.appFiles() == UpdateScenario.snapshot(v2))
            let all = server.requests(for: archive)
            #expect(all.count == first.count + 2, "the rest of the cut range, then the third: \(all.map { $0.header("Range") ?? "whole" })")
            let resumed = start(all[first.count].header("Range"))
            if multipart {
                let second = asked.dropFirst(6).split(separator: ",")[1].split(separator: "-").compactMap { Int64($0) }
                #expect(resumed > second[0] && resumed <= second[1], "resumed at \(resumed), inside \(second)")
            } else {
                #expect(resumed == start(first[2].header("Range")) + 2000, "resumed at \(resumed) after \(first[2].header("Range") ?? "?")")
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory)
            #expect(!left.contains { $0.hasPrefix("delta-") }, "the pieces go once staged: \(left)")
        }
    }
}
