@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// The differential update's plan: which files to reuse, which archive bytes to fetch.
@Suite("Delta plan")
struct DeltaPlanTests {
    static let hash = String(repeating: "a", count: 64)

    static func zipManifest(_ files: [(String, Int64, Int64, Int64)]) -> ReleaseManifest {
        ReleaseManifest(
            version: try! Version("2.0"), archive: "project.zip",
            files: files.map { path, size, offset, length in
                ReleaseManifest.Entry(path: path, type: .file, mode: 0o644, size: size, sha256: hash, offset: offset, length: length)
            })
    }

    @Test("zip: only the entries not reusable, sorted, with near ones coalesced")
    func zipRanges() throws {
        let manifest = Self.zipManifest([
            ("a", 10, 0, 100), ("b", 10, 100, 100), ("c", 10, 200, 100), ("far", 10, 1_000_000, 500), ("empty", 0, 1_000_500, 40),
        ])
        let plan = try #require(DeltaPlan.make(manifest: manifest, archiveSize: 2_000_000, reusable: ["b"]))
        #expect(plan.reused == ["b", "empty"])
        #expect(plan.fetched == ["a", "c", "far"])
        // a and c are 0 bytes apart (b lies between, 100 bytes): one range; far is alone.
        #expect(plan.ranges == [.init(offset: 0, length: 300), .init(offset: 1_000_000, length: 500)])
        #expect(plan.bytesToFetch == 800 && plan.isWorthwhile)
        #expect(plan.ranges.map(\.description) == ["0-299", "1000000-1000499"])

        let apart = try #require(DeltaPlan.make(manifest: manifest, archiveSize: 2_000_000, reusable: ["b"], maximumGap: 50))
        #expect(apart.ranges.count == 3, "a gap of 100 bytes is kept when the limit is 50")
        let most = try #require(DeltaPlan.make(manifest: Self.zipManifest([("a", 10, 0, 100)]), archiveSize: 110, reusable: []))
        #expect(most.bytesToFetch == 100 && !most.isWorthwhile, "above 80 % of the archive, a full download is simpler")
        let nothing = try #require(DeltaPlan.make(manifest: manifest, archiveSize: 2_000_000, reusable: ["a", "b", "c", "far"]))
        #expect(nothing.ranges.isEmpty && nothing.bytesToFetch == 0 && nothing.fetched.isEmpty)
    }

    @Test("seekable tar: each needed member once, whatever number of files it holds")
    func members() throws {
        let members = [
            ReleaseManifest.Member(offset: 0, size: 1000, unpacked: 300_000),
            ReleaseManifest.Member(offset: 1000, size: 5000, unpacked: 2_000_000),
            ReleaseManifest.Member(offset: 6000, size: 900, unpacked: 270_000),
        ]
        let files = [("s1", 0), ("s2", 0), ("big", 1), ("s3", 2), ("s4", 2)].map { path, member in
            ReleaseManifest.Entry(path: path, type: .file, mode: 0o644, size: 1, sha256: Self.hash, member: member)
        }
        let manifest = ReleaseManifest(version: try Version("2.0"), archive: "project.tar.gz", files: files, members: members)
        let plan = try #require(DeltaPlan.make(manifest: manifest, archiveSize: 6900, reusable: ["s2", "big", "s3"], maximumGap: 0))
        #expect(plan.fetched == ["s1", "s4"])
        #expect(plan.ranges == [.init(offset: 0, length: 1000), .init(offset: 6000, length: 900)])
        let coalesced = try #require(
            DeltaPlan.make(manifest: manifest, archiveSize: 6900, reusable: ["s2", "big", "s3"], maximumGap: 5000))
        #expect(coalesced.ranges == [.init(offset: 0, length: 6900)])
    }

    @Test("no offsets, or offsets past the archive: no plan (a full download)")
    func noPlan() throws {
        let bare = ReleaseManifest(
            version: try Version("2.0"), archive: "project.zip",
            files: [ReleaseManifest.Entry(path: "a", type: .file, mode: 0o644, size: 5, sha256: Self.hash)])
        #expect(DeltaPlan.make(manifest: bare, archiveSize: 100, reusable: []) == nil)
        #expect(DeltaPlan.make(manifest: bare, archiveSize: 100, reusable: ["a"]) != nil, "nothing to fetch needs no offsets")
        #expect(DeltaPlan.make(manifest: Self.zipManifest([("a", 1, 90, 20)]), archiveSize: 100, reusable: []) == nil)
    }

    @Test("the installed tree is compared byte for byte: changed, damaged, replaced or missing files are fetched again")
    func installedTree() async throws {
        let scenario = try UpdateScenario()
        let tree: [String: UpdateScenario.Content] = [
            "bin/app": .text("#!/bin/sh\necho 1\n", mode: 0o755), "same.txt": .text("same\n"), "damaged.txt": .text("original\n"),
            "changed.txt": .text("short\n"), "gone.txt": .text("gone\n"), "linked.txt": .text("linked\n"),
            "lib/deep/x.dat": .bytes([1, 2, 3]),
        ]
        let published = try scenario.publish(tree, version: "1.0", release: ReleaseOptions())
        let reference = try #require(published.index?.release(try Version("1.0"))?.manifest)
        let manifest = try ReleaseManifest.decode(
            [UInt8](Data(contentsOf: scenario.serverFolder.appending(path: reference.path))), matching: reference)

        try UpdateScenario.write(tree, to: scenario.appFolder)
        let app = scenario.appFolder
        try Data("originaL\n".utf8).write(to: app.appending(path: "damaged.txt"))  // same size, other bytes
        try Data("much longer now\n".utf8).write(to: app.appending(path: "changed.txt"))
        try FileManager.default.removeItem(at: app.appending(path: "gone.txt"))
        // The right bytes, but through a symlink: never followed, never reused.
        try FileManager.default.moveItem(at: app.appending(path: "linked.txt"), to: app.appending(path: "elsewhere.txt"))
        try FileManager.default.createSymbolicLink(atPath: app.appending(path: "linked.txt").path, withDestinationPath: "elsewhere.txt")

        let reusable = InstalledTree.reusableFiles(of: manifest, in: scenario.folder)
        #expect(reusable == ["bin/app", "same.txt", "lib/deep/x.dat"])
        let plan = try #require(DeltaPlan.make(manifest: manifest, archiveSize: published.bytes, reusable: reusable))
        #expect(Set(plan.fetched) == ["damaged.txt", "changed.txt", "gone.txt", "linked.txt"])
        #expect(plan.bytesToFetch > 0 && plan.bytesToFetch < published.bytes)
    }
}
