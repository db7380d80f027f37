@testable import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Logging
import Testing

/// Random trees and random changes, release after release: whatever a differential update
/// fetched or reused, the staged tree is byte for byte (modes and links too) the release's. (The
/// way through HTTPS, the install and every fallback is `DeltaUpdateTests`'; here the pieces come
/// from the published archive directly, so that 200 releases stay cheap.)
@Suite("Differential updates: randomized", .ownThread)
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

        /// A random change: files rewritten, added, removed, modes flipped (of files and folders), the
        /// link moved.
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
            // A folder's mode may change while every file in it stays the same.
            if random.chance(0.15) { tree["lib/deep"] = .folder(mode: random.pick([0o755, 0o750, 0o700])) }
        }
    }

    @Test(
        "random trees, random changes: every release installed differentially is exactly a full install of it",
        arguments: [("project.zip", 1), ("project.tar.gz", 2), ("project.tar.bz2", 3)] as [(String, UInt64)])
    func rounds(archive: String, seed: UInt64) async throws {
        let rounds = 67  // about 200 across the three formats
        try await onDedicatedThread {
            let scenario = try UpdateScenario(inMemory: true)
            let installer = Installer(folder: scenario.folder, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            var model = Model(seed: seed)
            try FileManager.default.createDirectory(atPath: scenario.folder.updateDirectory, withIntermediateDirectories: true)
            let first = scenario.folder.updateDirectory + "/staging-first"
            try UpdateScenario.write(model.tree, to: URL(fileURLWithPath: first))
            try installer.install(staging: first, version: Version("1.1"))
            var fetchedInAll: Int64 = 0
            var archivesInAll: Int64 = 0
            var keptInAll = 0
            var refusals = 0
            for round in 2...(rounds + 1) {
                model.change()
                let version = try Version("1.\(round)")
                let published = try scenario.publish(model.tree, version: version.description, archive: archive, release: ReleaseOptions())
                let release = try #require(published.index?.release(version))
                let reference = try #require(release.manifest)
                let manifest = try ReleaseManifest.decode(
                    [UInt8](Data(contentsOf: scenario.serverFolder.appending(path: reference.path))), matching: reference)
                let archiveBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: published.archive)))
                // Now and then a file is damaged after its install: it must be fetched again.
                if model.random.chance(0.15), let path = model.files.randomElement(using: &model.random) {
                    try Self.damage(scenario.appFolder.appending(path: path))
                }
                for attempt in 1...2 {
                    let installed = InstalledTree.scan(manifest.files, in: scenario.folder)
                    let plan = try #require(DeltaPlan.make(manifest: manifest, archiveSize: release.size, reusable: Set(installed.keys)))
                    let kept = InstalledTree.keptInPlace(
                        installed, manifest: manifest, listed: Set(scenario.folder.readFileList().value ?? []))
                    let overlay = Installer.Overlay(kept: kept, folderModes: manifest.folderModes)
                    let staging = scenario.folder.updateDirectory + "/staging-\(round)-\(attempt)"
                    try Self.stage(
                        manifest: manifest, plan: plan, kept: kept, archive: archive, archiveBytes: archiveBytes, scenario: scenario,
                        staging: staging)
                    // Between staging and install, a kept file may be touched (same bytes: it
                    // stays) or changed (the install refuses; the next try fetches it).
                    let keptFiles = kept.filter { $0.value.size > 0 }.keys.sorted()
                    if model.random.chance(0.1), let path = keptFiles.randomElement(using: &model.random) {
                        let url = scenario.appFolder.appending(path: path)
                        try Data(contentsOf: url).write(to: url)
                    }
                    if attempt == 1, model.random.chance(0.08), let path = keptFiles.randomElement(using: &model.random) {
                        try Self.damage(scenario.appFolder.appending(path: path))
                        let damaged = try scenario.appSnapshot()
                        #expect(throws: AutoupdateError.self) {
                            try installer.install(staging: staging, version: version, overlay: overlay)
                        }
                        #expect(try scenario.appSnapshot() == damaged, "round \(round): a refused install changed the app folder")
                        try? TreeRemoval.remove(path: staging)
                        refusals += 1
                        continue
                    }
                    try installer.install(staging: staging, version: version, overlay: overlay)
                    fetchedInAll += plan.bytesToFetch
                    keptInAll += kept.count
                    break
                }
                archivesInAll += release.size
                let expectedFolder = scenario.work.url.appending(path: "expected-\(round)")
                try UpdateScenario.write(model.tree, to: expectedFolder)
                let expected = try TreeSnapshot(expectedFolder)
                let installedNow = try scenario.appFiles()
                try #require(installedNow == expected, "round \(round): \(installedNow.differences(from: expected).prefix(5))")
                // filelist.txt is exactly what a full install of the release writes.
                let fullList = try Folder(path: expectedFolder.path).tree(skippingTopLevel: { _ in false }).entries
                try #require(scenario.folder.readFileList().value == fullList, "round \(round): filelist.txt")
                try TreeRemoval.remove(path: expectedFolder.path)
            }
            print(
                "randomized deltas \(archive): fetched \(fetchedInAll) of \(archivesInAll) bytes over \(rounds) releases, \(keptInAll) files left in place, \(refusals) installs refused"
            )
            #expect(fetchedInAll < archivesInAll)
            #expect(keptInAll > 0)
            #expect(refusals > 0)
        }
    }

    /// Flips a byte in the middle of a file (an empty file gets one).
    static func damage(_ url: URL) throws {
        guard var bytes = try? [UInt8](Data(contentsOf: url)) else { return }
        if bytes.isEmpty { bytes = [0x5A] } else { bytes[bytes.count / 2] ^= 0x5A }
        try Data(bytes).write(to: url)
    }

    /// Stages a release differentially, the ranges cut from the archive as a server would send them.
    static func stage(
        manifest: ReleaseManifest, plan: DeltaPlan, kept: [String: InstalledFile], archive: String, archiveBytes: [UInt8],
        scenario: UpdateScenario, staging: String
    ) throws {
        let pieces = scenario.work.url.appending(path: "pieces")
        try FileManager.default.createDirectory(at: pieces, withIntermediateDirectories: true)
        defer { try? TreeRemoval.remove(path: pieces.path) }
        var files: [String] = []
        for (index, range) in plan.ranges.enumerated() {
            let file = pieces.appending(path: "range-\(index)")
            try Data(archiveBytes[Int(range.offset)..<Int(range.end)]).write(to: file)
            files.append(file.path)
        }
        try DeltaStager.build(
            manifest: manifest, plan: plan, copying: plan.reused.filter { kept[$0] == nil }, keeping: Set(kept.keys),
            format: try ArchiveName(archive).format, rangeFiles: files, installed: scenario.appFolder.path, staging: staging,
            scratch: pieces.appending(path: "member").path)
    }
}
