import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// Random trees and random changes, release after release: whatever a differential update
/// fetched or reused, the installed tree is byte for byte (modes and links too) the release's.
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
        "random trees, random changes: every release installed is exactly the release",
        arguments: [("project.zip", 1), ("project.tar.gz", 2), ("project.tar.bz2", 3)] as [(String, UInt64)])
    func rounds(archive: String, seed: UInt64) async throws {
        let rounds = 67  // about 200 across the three formats
        let scenario = try UpdateScenario()
        var model = Model(seed: seed)
        var differential = 0
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let updater = try Updater(
                folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
                // Small trees fit in a few members: `always` takes the differential path even when it
                // saves little, so that every round exercises it.
                configuration: UpdaterConfiguration(
                    download: .forTests(maxRetries: 0, caFile: TestPKI.caFile), differential: .always),
                logger: Logger(label: "test"))
            for round in 1...rounds {
                if round > 1 { model.change() }
                let version = "1.\(round)"
                try scenario.publish(model.tree, version: version, archive: archive, release: ReleaseOptions())
                // Now and then a file is damaged after its install: it must be fetched again.
                if round > 1, model.random.chance(0.15), let path = model.files.randomElement(using: &model.random),
                    let data = try? Data(contentsOf: scenario.appFolder.appending(path: path)), !data.isEmpty
                {
                    var bytes = [UInt8](data)
                    bytes[bytes.count / 2] ^= 0x5A
                    try Data(bytes).write(to: scenario.appFolder.appending(path: path))
                }
                let outcome = try await updater.update()
                try #require(outcome == .updated(from: round == 1 ? .zero : try Version("1.\(round - 1)"), to: try Version(version)))
                let installed = try scenario.appFiles()
                let expected = try UpdateScenario.snapshot(model.tree)
                try #require(installed == expected, "round \(round): \(installed.differences(from: expected).prefix(5))")
            }
            let audit = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
            differential = audit.components(separatedBy: "\"decision\":\"delta-staged\"").count - 1
            #expect(!audit.contains("delta-failed"), "no piece failed")
        }
        #expect(differential == rounds - 1, "\(differential) of \(rounds) releases came differentially")
        print("randomized deltas \(archive): \(differential) of \(rounds) differential")
    }
}
