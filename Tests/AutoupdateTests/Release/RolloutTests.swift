@testable import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// Staged rollouts: the draw, its statistics, and the install id it is drawn for.
@Suite("Staged rollout", .ownThread)
struct RolloutTests {
    static func installIDs(_ count: Int, seed: UInt64) -> [String] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
        }
    }

    @Test("the draw is the first 8 bytes of SHA-256(install id ‖ version), big-endian (Python's hashlib agrees)")
    func knownDraws() throws {
        #expect(Rollout.draw(installID: "0123456789abcdef0123456789abcdef", version: try Version("2.0")) == 4_087_931_311_262_756_306)
        // The version's normalized form is what is hashed: 1.5-RC1 is 1.5rc1.
        #expect(Rollout.draw(installID: "fleet-node-07", version: try Version("1.5-RC1")) == 3_554_813_291_699_170_270)
    }

    @Test("over 10,000 installs: 10 % takes about a tenth, raising to 50 % keeps all of them, releases draw independently")
    func statistics() throws {
        let ids = Self.installIDs(10_000, seed: 2026)
        let v2 = try Version("2.0")
        let atTen = Set(ids.filter { Rollout.includes(installID: $0, version: v2, percent: 10) })
        #expect((850...1150).contains(atTen.count), "\(atTen.count) of 10,000 at 10 %")
        let atFifty = Set(ids.filter { Rollout.includes(installID: $0, version: v2, percent: 50) })
        #expect((4700...5300).contains(atFifty.count), "\(atFifty.count) of 10,000 at 50 %")
        #expect(atTen.isSubset(of: atFifty), "raising a rollout keeps every earlier adopter")
        let nextRelease = Set(ids.filter { Rollout.includes(installID: $0, version: try! Version("2.1"), percent: 10) })
        #expect(atTen.intersection(nextRelease).count < 250, "the same installs are not first for every release")
    }

    @Test("0 % (halted) takes nobody, 100 % everybody; nonsense percentages are clamped")
    func bounds() throws {
        let ids = Self.installIDs(200, seed: 7)
        let version = try Version("1.0")
        #expect(ids.allSatisfy { !Rollout.includes(installID: $0, version: version, percent: 0) })
        #expect(ids.allSatisfy { Rollout.includes(installID: $0, version: version, percent: 100) })
        #expect(ids.allSatisfy { Rollout.includes(installID: $0, version: version, percent: 250) })
        #expect(ids.allSatisfy { !Rollout.includes(installID: $0, version: version, percent: -5) })
        #expect(ids.allSatisfy { !Rollout.includes(installID: $0, version: version, percent: .nan) })
        #expect(ids.contains { Rollout.includes(installID: $0, version: version, percent: 99.999_999_999_999_99) })
    }

    @Test("the install id is made once and kept; a damaged one is made anew; AUTOUPDATE_INSTALL_ID overrides it")
    func installID() throws {
        let work = try TemporaryDirectory()
        let folder = AppFolder(path: work.path)
        let first = try folder.installID(environment: [:])
        #expect(first.count == 32 && first.allSatisfy(\.isHexDigit))
        #expect(try folder.installID(environment: [:]) == first)
        let file = folder.updateDirectory + "/install-id"
        #expect(try String(contentsOfFile: file, encoding: .utf8) == first + "\n")
        try Data("\u{0}\u{1}garbage/../".utf8).write(to: URL(fileURLWithPath: file))
        let remade = try folder.installID(environment: [:])
        #expect(remade != first && remade.count == 32)
        #expect(try folder.installID(environment: ["AUTOUPDATE_INSTALL_ID": "fleet-node-07"]) == "fleet-node-07")
        let invalid = #expect(throws: AutoupdateError.self) { try folder.installID(environment: ["AUTOUPDATE_INSTALL_ID": "a b"]) }
        #expect(invalid?.message.contains("AUTOUPDATE_INSTALL_ID") == true)
        #expect(throws: AutoupdateError.self) { try folder.installID(environment: ["AUTOUPDATE_INSTALL_ID": ""]) }
    }
}
