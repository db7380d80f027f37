@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// Random trees and random changes, release after release: whatever a differential update
/// fetched or reused, the staged tree is byte for byte (modes and links too) the release's. (The
/// way through HTTPS, the install and every fallback is `DeltaUpdateTests`'; here the pieces come
/// from the published archive directly, so that 200 releases stay cheap.)
@Suite("Differential updates: randomized")
struct DeltaRandomizedTests {
    /// One release after another, each a random change of the one before.
    struct Model {
        var random: SeededRandom
        var tree: [String: UpdateScenario.Content] = [:]
        var counter = 0
        static let folders = ["", "lib/", "lib/deep/", "share/"]

        init(seed: UInt64) {
            random = SeededRandom(seed: seed)
            for _ in 0..<Int.random(in: 4...12, using: &random) { add() }
            tree["bin/app"] = .text("#!/bin/sh\necho start\n", mode: 0o755)
        }

        mutating func bytes() -> [UInt8] {
            let size = random.pick([0, 1, 100, 600, 3_000, 9_000, 20_000])
            let seed = UInt8.random(in: 0...255, using: &random)
            // Partly repetitive, partly random: compressible, and different from every other file.
            return (0..<size).map { index in index % 7 == 0 ? UInt8.random(in: 0...255, using: &random) : seed &+ UInt8(index % 13) }
        }

        mutating func add() {
            counter += 1
            let path = random.pick(Self.folders) + "f\(counter).dat"
            tree[path] = .bytes(bytes(), mode: random.chance(0.2) ? 0o755 : 0o644)
        }

        var files: [String] { tree.keys.filter { if case .bytes = tree[$0] { true } else { false } }.sorted() }

        /// A random change: files rewritten, added, removed, modes flipped, the link moved.
        mutating func change() {
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                if let path = files.randomElement(using: &random) { tree[path] = .bytes(bytes(), mode: 0o644) }
            }
            for _ in 0..<Int.random(in: 0...2, using: &random) { add() }
            if files.count > 3, random.chance(0.5), let path = files.randomElement(using: &random) { tree[path] = nil }
            if random.chance(0.3), let path = files.randomElement(using: &random), case .bytes(let content, let mode) = tree[path] {
                tree[path] = .bytes(content, mode: mode == 0o755 ? 0o644 : 0o755)
            }
            if random.chance(0.4), let target = files.randomElement(using: &random) { tree["link"] = .symlink(target) }
            if random.chance(0.1) { tree["empty-\(counter)"] = .folder(mode: 0o750) }
        }
    }

    @Test(
        "random trees, random changes: every release staged differentially is exactly the release",
        arguments: [("project.zip", 1), ("project.tar.gz", 2), ("project.tar.bz2", 3)] as [(String, UInt64)])
    func rounds(archive: String, seed: UInt64) async throws {
        let rounds = 67  // about 200 across the three formats
        try await onDedicatedThread {
            let scenario = try UpdateScenario(inMemory: true)
            var model = Model(seed: seed)
            try UpdateScenario.write(model.tree, to: scenario.appFolder)
            var fetchedInAll: Int64 = 0
            var archivesInAll: Int64 = 0
            for round in 2...(rounds + 1) {
                model.change()
                let version = try Version("1.\(round)")
                let published = try scenario.publish(model.tree, version: version.description, archive: archive, release: ReleaseOptions())
                let release = try #require(published.index?.release(version))
                let reference = try #require(release.manifest)
                let manifest = try ReleaseManifest.decode(
                    [UInt8](Data(contentsOf: scenario.serverFolder.appending(path: reference.path))), matching: reference)
                // Now and then a file is damaged after its install: it must be fetched again.
                if model.random.chance(0.15), let path = model.files.randomElement(using: &model.random),
                    let data = try? Data(contentsOf: scenario.appFolder.appending(path: path)), !data.isEmpty
                {
                    var bytes = [UInt8](data)
                    bytes[bytes.count / 2] ^= 0x5A
                    try Data(bytes).write(to: scenario.appFolder.appending(path: path))
                }
                let reusable = InstalledTree.reusableFiles(of: manifest, in: scenario.folder)
                let plan = try #require(DeltaPlan.make(manifest: manifest, archiveSize: release.size, reusable: reusable))
                // The ranges, as the server would send them.
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: published.archive)))
                let pieces = scenario.work.url.appending(path: "pieces-\(round)")
                try FileManager.default.createDirectory(at: pieces, withIntermediateDirectories: true)
                var files: [String] = []
                for (index, range) in plan.ranges.enumerated() {
                    let file = pieces.appending(path: "range-\(index)")
                    try Data(bytes[Int(range.offset)..<Int(range.end)]).write(to: file)
                    files.append(file.path)
                }
                let staging = scenario.work.url.appending(path: "staging-\(round)")
                try DeltaStager.build(
                    manifest: manifest, plan: plan, format: try ArchiveName(archive).format, rangeFiles: files,
                    installed: scenario.appFolder.path, staging: staging.path, scratch: pieces.appending(path: "member").path)
                let staged = try TreeSnapshot(staging)
                let expected = try UpdateScenario.snapshot(model.tree)
                try #require(staged == expected, "round \(round): \(staged.differences(from: expected).prefix(5))")
                fetchedInAll += plan.bytesToFetch
                archivesInAll += release.size
                // The staged tree becomes the installed one.
                try TreeRemoval.remove(path: scenario.appFolder.path)
                try FileManager.default.moveItem(at: staging, to: scenario.appFolder)
                try TreeRemoval.remove(path: pieces.path)
            }
            print("randomized deltas \(archive): fetched \(fetchedInAll) of \(archivesInAll) bytes over \(rounds) releases")
            #expect(fetchedInAll < archivesInAll)
        }
    }
}
