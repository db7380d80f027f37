import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// Python's `packaging.version.Version` is the reference implementation PEP 440 points to: on a
/// few thousand generated strings, validity, normalization and order must match it exactly.
@Suite("Version: differential test against Python packaging", .ownThread)
struct VersionDifferentialTests {
    private struct Reference: Decodable {
        let normalized: [String?]
        let rank: [Int?]
    }

    private static let script = """
        import json, sys
        from packaging.version import Version, InvalidVersion
        items = json.load(open(sys.argv[1]))
        normalized, valid = [], []
        for index, text in enumerate(items):
            try:
                version = Version(text)
            except InvalidVersion:
                normalized.append(None)
                continue
            normalized.append(str(version))
            valid.append((version, index))
        valid.sort(key=lambda pair: pair[0])
        rank, current, previous = [None] * len(items), -1, None
        for version, index in valid:
            if previous is None or version != previous:
                current, previous = current + 1, version
            rank[index] = current
        json.dump({"normalized": normalized, "rank": rank}, sys.stdout)
        """

    @Test(
        "validity, normalization and order match packaging",
        .enabled(if: ReferencePython.interpreter != nil, "needs Python with packaging: run `make deps`"),
        arguments: [20_261_124, 7] as [UInt64]
    )
    func matchesPackaging(seed: UInt64) async throws {
        var generator = VersionStringGenerator(seed: seed)
        let inputs = (0..<3000).map { _ in generator.next() }
        let folder = try TemporaryDirectory()
        let inputFile = folder.url.appending(path: "versions.json")
        try JSONEncoder().encode(inputs).write(to: inputFile)
        let result = try await ReferencePython.run(script: Self.script, arguments: [inputFile.path])
        try #require(result.status == 0, "python failed: \(result.stderr)")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(result.stdout.utf8))

        var parsed: [(version: Version, rank: Int)] = []
        var mismatches = 0
        for (index, text) in inputs.enumerated() {
            let ours = try? Version(text)
            if ours?.description != reference.normalized[index] {
                mismatches += 1
                Issue.record(
                    "seed \(seed): \(text.debugDescription): ours \(ours?.description ?? "invalid"), packaging \(reference.normalized[index] ?? "invalid")"
                )
            }
            if let ours, let rank = reference.rank[index] {
                parsed.append((ours, rank))
            }
        }
        #expect(parsed.count > 1000, "the generator must produce mostly valid versions")

        // Both orders are total preorders: they agree iff, after sorting by ours, the reference
        // ranks never decrease and neighbours are equal in ours exactly when their ranks are.
        parsed.sort { $0.version < $1.version }
        for (left, right) in zip(parsed, parsed.dropFirst()) {
            let agrees = left.version == right.version ? left.rank == right.rank : left.rank < right.rank
            if !agrees {
                mismatches += 1
                Issue.record("seed \(seed): order of \(left.version) and \(right.version) differs from packaging")
            }
        }
        #expect(mismatches == 0)
    }
}
