import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// `packaging.specifiers.SpecifierSet` is the reference for PEP 440 specifiers: on thousands of
/// generated (specifier set, version) pairs, validity, `contains` and `filter` under each
/// pre-release setting must match it exactly.
@Suite("Version specifiers: differential test against Python packaging", .ownThread)
struct VersionSpecifierDifferentialTests {
    private struct Input: Encodable {
        let specs: [String]
        let versions: [String]
        let lists: [[String]]
    }

    private struct Answer: Decodable {
        let contains: [Bool]
        let filterDefault: [String]
        let filterWith: [String]
        let filterWithout: [String]
    }

    private static let script = """
        import json, sys
        from packaging.specifiers import SpecifierSet, InvalidSpecifier
        data = json.load(open(sys.argv[1]))
        answers = []
        for spec, items in zip(data["specs"], data["lists"]):
            try:
                s = SpecifierSet(spec)
            except InvalidSpecifier:
                answers.append(None)
                continue
            answers.append({
                "contains": [s.contains(v) for v in data["versions"]],
                "filterDefault": list(s.filter(items)),
                "filterWith": list(s.filter(items, prereleases=True)),
                "filterWithout": list(s.filter(items, prereleases=False)),
            })
        json.dump(answers, sys.stdout)
        """

    @Test(
        "validity, contains and filter match packaging",
        .enabled(if: ReferencePython.interpreter != nil, "needs Python with packaging: run `make deps`"),
        arguments: [20_261_205, 11] as [UInt64]
    )
    func matchesPackaging(seed: UInt64) async throws {
        var generator = SpecifierStringGenerator(seed: seed)
        let specs = (0..<1500).map { _ in generator.specifierSet() }
        let versions = (0..<30).map { _ in generator.nearbyVersion() } + ["foo", "1.0 ", "2.0;x"]
        let lists = specs.indices.map { index in (0...index % 5).map { _ in generator.nearbyVersion() } }
        let folder = try TemporaryDirectory()
        let inputFile = folder.url.appending(path: "specifiers.json")
        try JSONEncoder().encode(Input(specs: specs, versions: versions, lists: lists)).write(to: inputFile)
        let result = try await ReferencePython.run(script: Self.script, arguments: [inputFile.path])
        try #require(result.status == 0, "python failed: \(result.stderr)")
        let answers = try JSONDecoder().decode([Answer?].self, from: Data(result.stdout.utf8))
        try #require(answers.count == specs.count)

        var mismatches = 0
        var valid = 0
        var matched = 0
        for (index, spec) in specs.enumerated() {
            let ours = try? VersionSpecifierSet(spec)
            guard let ours, let answer = answers[index] else {
                if (ours == nil) != (answers[index] == nil) {
                    mismatches += 1
                    Issue.record("seed \(seed): \(spec.debugDescription): ours \(ours == nil ? "invalid" : "valid"), packaging the other")
                }
                continue
            }
            valid += 1
            for (version, expected) in zip(versions, answer.contains) where ours.contains(version) != expected {
                mismatches += 1
                Issue.record("seed \(seed): \(spec.debugDescription) contains \(version.debugDescription): packaging says \(expected)")
            }
            matched += answer.contains.filter { $0 }.count
            let list = lists[index]
            for (preReleases, expected) in [(nil, answer.filterDefault), (true, answer.filterWith), (false, answer.filterWithout)]
                as [(Bool?, [String])]
            {
                let filtered = ours.filter(list, preReleases: preReleases)
                if filtered != expected {
                    mismatches += 1
                    Issue.record(
                        "seed \(seed): \(spec.debugDescription) filter \(list) prereleases \(String(describing: preReleases)): ours \(filtered), packaging \(expected)"
                    )
                }
            }
            if mismatches > 30 { break }
        }
        #expect(valid > 700, "the generator must produce mostly valid specifier sets")
        #expect(matched > 5000, "specifiers and versions must meet often enough to test matching")
        #expect(mismatches == 0)
    }
}
