@testable import Autoupdate
import AutoupdateTestTraits
import Testing

/// Every client rule of the release manifest, table by table, without a server.
@Suite("Release policy", .ownThread)
struct ReleasePolicyTests {
    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        var releases: [ReleaseIndex.Release]
        var installed: String?
        var channel = "stable"
        var pin: String?
        var installID = "table-install"
        var floor: String?
        var bad: [String] = []
        var trusted = false
        let expected: String?
        let reason: ReleasePolicy.Reason
        var mandatory = false

        var testDescription: String { name }
    }

    static func release(
        _ version: String, channel: String = "stable", rollout: Double = 100, minimum: String? = nil, required: Bool = false,
        yanked: Bool = false
    ) -> ReleaseIndex.Release {
        ReleaseIndex.Release(
            version: try! Version(version), channel: channel, archive: "project.zip", path: "releases/\(version)/project.zip", size: 1,
            unpacked: 1, sha256: String(repeating: "0", count: 64), blake2b: String(repeating: "0", count: 128), rollout: rollout,
            minimumVersion: minimum.map { try! Version($0) }, required: required, yanked: yanked)
    }

    /// Install ids inside and outside 2.0's rollout at 50 %, found by the draw itself.
    static let (inside, outside): (String, String) = {
        let version = try! Version("2.0")
        let ids = (0..<64).map { "install-\($0)" }
        let threshold = UInt64.max / 2
        return (
            ids.first { Rollout.draw(installID: $0, version: version) < threshold }!,
            ids.first { Rollout.draw(installID: $0, version: version) >= threshold }!
        )
    }()

    static func r(
        _ version: String, channel: String = "stable", rollout: Double = 100, minimum: String? = nil, required: Bool = false,
        yanked: Bool = false
    ) -> ReleaseIndex.Release {
        release(version, channel: channel, rollout: rollout, minimum: minimum, required: required, yanked: yanked)
    }

    static let scenarios: [Scenario] = [
        Scenario(name: "nothing newer: up to date", releases: [r("1.0")], installed: "1.0", expected: nil, reason: .upToDate),
        Scenario(name: "a newer release", releases: [r("1.0"), r("2.0")], installed: "1.0", expected: "2.0", reason: .newer),
        Scenario(
            name: "nothing installed takes the newest", releases: [r("1.0"), r("2.0")], installed: nil, expected: "2.0", reason: .newer),
        Scenario(
            name: "stable does not see beta", releases: [r("2.0"), r("2.1b1", channel: "beta")], installed: "1.0", expected: "2.0",
            reason: .newer),
        Scenario(
            name: "beta sees beta and stable", releases: [r("2.0"), r("2.1b1", channel: "beta")], installed: "1.0", channel: "beta",
            expected: "2.1b1", reason: .newer),
        Scenario(
            name: "a stable release overtaking the beta reaches beta testers",
            releases: [r("2.1b1", channel: "beta"), r("2.1"), r("2.2a1", channel: "alpha")], installed: "2.1b1", channel: "beta",
            expected: "2.1", reason: .newer),
        Scenario(
            name: "alpha sees every channel", releases: [r("2.0"), r("2.1b1", channel: "beta"), r("2.2a1", channel: "alpha")],
            installed: "2.0", channel: "alpha", expected: "2.2a1", reason: .newer),
        Scenario(
            name: "an unknown channel sees stable only", releases: [r("2.0"), r("2.1b1", channel: "beta")], installed: "1.0",
            channel: "nightly", expected: "2.0", reason: .newer),
        Scenario(
            name: "a pin caps the version", releases: [r("1.0"), r("1.5"), r("2.0")], installed: "1.0", pin: "<2", expected: "1.5",
            reason: .newer),
        Scenario(
            name: "a pin excluding every newer one", releases: [r("1.0"), r("2.0")], installed: "1.0", pin: "~=1.0", expected: nil,
            reason: .pinnedOut),
        Scenario(
            name: "a pin on stable leaves out pre-releases when a final one matches", releases: [r("1.1"), r("1.2rc1")],
            installed: "1.0", pin: ">=1.0", expected: "1.1", reason: .newer),
        Scenario(
            name: "without a pin a pre-release on stable is taken", releases: [r("1.1"), r("1.2rc1")], installed: "1.0",
            expected: "1.2rc1", reason: .newer),
        Scenario(
            name: "a pin on beta lets pre-releases through", releases: [r("1.1"), r("1.2rc1", channel: "beta")], installed: "1.0",
            channel: "beta", pin: ">=1.0", expected: "1.2rc1", reason: .newer),
        Scenario(
            name: "a pin naming a pre-release allows them on stable", releases: [r("1.1"), r("1.2rc1")], installed: "1.0",
            pin: ">=1.2rc1", expected: "1.2rc1", reason: .newer),
        Scenario(
            name: "a halted rollout", releases: [r("1.0"), r("2.0", rollout: 0)], installed: "1.0", expected: nil, reason: .outsideRollout),
        Scenario(
            name: "inside a 50 % rollout", releases: [r("1.0"), r("2.0", rollout: 50)], installed: "1.0", installID: inside,
            expected: "2.0", reason: .newer),
        Scenario(
            name: "outside a 50 % rollout", releases: [r("1.0"), r("2.0", rollout: 50)], installed: "1.0", installID: outside,
            expected: nil, reason: .outsideRollout),
        Scenario(
            name: "outside the newest rollout takes an older one fully rolled out",
            releases: [r("1.0"), r("1.5"), r("2.0", rollout: 50)], installed: "1.0", installID: outside, expected: "1.5", reason: .newer),
        Scenario(
            name: "below a minimum version: mandatory", releases: [r("1.0"), r("2.0", minimum: "1.5")], installed: "1.0",
            expected: "2.0", reason: .minimum, mandatory: true),
        Scenario(
            name: "above the minimum version: optional", releases: [r("1.6"), r("2.0", minimum: "1.5")], installed: "1.6",
            expected: "2.0", reason: .newer),
        Scenario(
            name: "a minimum version reaches installs outside the rollout", releases: [r("1.0"), r("2.0", rollout: 50, minimum: "1.5")],
            installed: "1.0", installID: outside, expected: "2.0", reason: .minimum, mandatory: true),
        Scenario(
            name: "but not through a halted rollout", releases: [r("1.0"), r("2.0", rollout: 0, minimum: "1.5")], installed: "1.0",
            expected: nil, reason: .outsideRollout),
        Scenario(
            name: "a required release comes first", releases: [r("2.0"), r("2.5", required: true), r("3.0")], installed: "2.0",
            expected: "2.5", reason: .required, mandatory: true),
        Scenario(
            name: "past the required release, the newest", releases: [r("2.0"), r("2.5", required: true), r("3.0")], installed: "2.5",
            expected: "3.0", reason: .newer),
        Scenario(
            name: "a required release outside the rollout holds the install below it",
            releases: [r("2.0"), r("2.2"), r("2.5", rollout: 0, required: true), r("3.0")], installed: "2.0", expected: "2.2",
            reason: .newer),
        Scenario(
            name: "and waits at the last one below it", releases: [r("2.2"), r("2.5", rollout: 0, required: true), r("3.0")],
            installed: "2.2", expected: nil, reason: .outsideRollout),
        Scenario(
            name: "a yanked release is not installed", releases: [r("1.0"), r("2.0", yanked: true)], installed: "1.0", expected: nil,
            reason: .withdrawn),
        Scenario(
            name: "a yanked release is passed over for an older one", releases: [r("1.0"), r("1.5"), r("2.0", yanked: true)],
            installed: "1.0", expected: "1.5", reason: .newer),
        Scenario(
            name: "running a yanked version with a trusted index: down to the newest offered",
            releases: [r("1.0"), r("1.5"), r("2.0", yanked: true)], installed: "2.0", floor: "2.0", trusted: true, expected: "1.5",
            reason: .yanked, mandatory: true),
        Scenario(
            name: "running a yanked version without a trusted index: stays", releases: [r("1.0"), r("1.5"), r("2.0", yanked: true)],
            installed: "2.0", floor: "2.0", expected: nil, reason: .upToDate),
        Scenario(
            name: "running a yanked version with a newer one offered", releases: [r("2.0", yanked: true), r("2.1")], installed: "2.0",
            trusted: true, expected: "2.1", reason: .yanked, mandatory: true),
        Scenario(
            name: "nothing below the floor", releases: [r("1.0"), r("1.5"), r("2.0")], installed: "1.0", floor: "2.0", bad: ["2.0"],
            expected: nil, reason: .withdrawn),
        Scenario(
            name: "a bad version is skipped for the next lower one", releases: [r("1.0"), r("2.0"), r("2.1")], installed: "1.0",
            bad: ["2.1"], expected: "2.0", reason: .newer),
    ]

    @Test("each rule decides as documented", arguments: scenarios)
    func decide(_ scenario: Scenario) throws {
        let index = ReleaseIndex(serial: 1, releases: scenario.releases)
        let policy = ReleasePolicy(
            channel: scenario.channel, pin: try scenario.pin.map(VersionSpecifierSet.init), installID: scenario.installID)
        let decision = policy.decide(
            index: index, installed: try scenario.installed.map(Version.init), floor: try scenario.floor.map(Version.init),
            bad: Set(try scenario.bad.map(Version.init)), trustedForDowngrade: scenario.trusted)
        #expect(decision.candidate?.version.description == scenario.expected)
        #expect(decision.reason == scenario.reason)
        #expect(decision.mandatory == scenario.mandatory)
    }

    @Test("raising a rollout keeps every install that was in, and a halt (0 %) removes all")
    func raisingKeepsAdopters() throws {
        let ids = RolloutTests.installIDs(2000, seed: 5)
        func adopters(_ percent: Double) -> Set<String> {
            let index = ReleaseIndex(serial: 1, releases: [Self.release("1.0"), Self.release("2.0", rollout: percent)])
            return Set(ids.filter { ReleasePolicy(installID: $0).decide(index: index, installed: try! Version("1.0")).candidate != nil })
        }
        let (ten, fifty) = (adopters(10), adopters(50))
        #expect(ten.isSubset(of: fifty))
        #expect((150...250).contains(ten.count), "\(ten.count) of 2000 at 10 %")
        #expect(adopters(0).isEmpty)
        #expect(adopters(100).count == ids.count)
    }
}
