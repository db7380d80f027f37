import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Testing

@Suite("Version: PEP 440 parsing and normalization")
struct VersionParsingTests {
    @Test(
        "normalizes every spelling PEP 440 allows",
        arguments: [
            ("1.0", "1.0"), ("v1.0", "1.0"), ("V1.0", "1.0"),
            ("1.0-RC1", "1.0rc1"), ("1.0a", "1.0a0"), ("1.0alpha1", "1.0a1"), ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"), ("1.0pre1", "1.0rc1"), ("1.0-preview_1", "1.0rc1"), ("1.0.a1", "1.0a1"),
            ("1.0-1", "1.0.post1"), ("1.0-post1", "1.0.post1"), ("1.0.r", "1.0.post0"), ("1.0rev1", "1.0.post1"),
            ("1.0_post_2", "1.0.post2"), ("1.0-r-", "1.0.post0"),
            ("1.0-dev", "1.0.dev0"), ("1.0dev1", "1.0.dev1"),
            ("1.0+ubuntu-1", "1.0+ubuntu.1"), ("1.0+Ubuntu_1", "1.0+ubuntu.1"), ("1.0+abc.05", "1.0+abc.5"),
            ("1!1.0", "1!1.0"), ("0!1.0", "1.0"), ("v1!2", "1!2"), ("01.02.003", "1.2.3"),
            (" 1.0 ", "1.0"), ("\t1.0\n", "1.0"), ("\u{A0}1.0\u{3000}", "1.0"), ("1.0\u{1C}", "1.0"),
            ("1.0a1.post2.dev3", "1.0a1.post2.dev3"), ("1.0.post1.dev2", "1.0.post1.dev2"),
            ("1.2.3.4.5.6.7.8", "1.2.3.4.5.6.7.8"), ("1.0rc1+local.7", "1.0rc1+local.7"),
            ("1.99999999999999999999999", "1.99999999999999999999999"),
            ("1!2.0rc3.post4.dev5+x.y.z", "1!2.0rc3.post4.dev5+x.y.z"),
        ])
    func normalizes(input: String, normalized: String) throws {
        let version = try Version(input)
        #expect(version.description == normalized)
        #expect(try Version(version.description).description == normalized, "normalizing is idempotent")
    }

    @Test("one length limit: longer texts, or texts whose normal form would not fit, are refused")
    func lengthLimit() throws {
        let limit = Version.maximumTextLength
        let fits = "1" + String(repeating: ".0", count: (limit - 2) / 2)  // normalized: itself
        #expect(fits.utf8.count == limit - 1)
        #expect(try Version(fits).description == fits)
        for (text, reason) in [
            (fits + ".0", "longer than \(limit) bytes"),  // limit + 1
            (String(fits.dropLast(4)) + "-1", "normalized, it is longer than \(limit - 1) bytes"),  // grows to ".post1"
        ] {
            #expect {
                try Version(text)
            } throws: { error in
                guard let error = error as? AutoupdateError else { return false }
                return error.code == .invalidVersion && error.message.contains(reason) && error.message.count < 200
            }
        }
    }

    @Test("exposes the parsed parts")
    func parts() throws {
        let version = try Version("2!1.2.3rc4.post5.dev6+Ubuntu.7")
        #expect(version.epoch == 2)
        #expect(version.release == [1, 2, 3])
        #expect(version.preRelease?.kind == .releaseCandidate)
        #expect(version.preRelease?.number == 4)
        #expect(version.postRelease == 5)
        #expect(version.devRelease == 6)
        #expect(version.local == [.text("ubuntu"), .number(7)])
        #expect(version.isPreRelease)
        #expect(try !Version("1.0.post1").isPreRelease)
        #expect(try Version("1.0.dev1").isPreRelease)
    }

    @Test(
        "refuses what PEP 440 does not allow, naming the text",
        arguments: [
            "", " ", "banana", "1.0-", "1..0", ".1", "1.0+", "1.0+a..b", "1.0-1-1", "1.0._a", "1.0 1", "1,0",
            "1.0+ä", "1.0\u{200B}", "v", "1!", "!1", "1.0dev1post1", "1.0.post1a1", "1.0a1a2", "vv1.0",
            "1.0+a_", "1.0--1", "١.0", "1.0+local+other", "1.0b1.dev1.dev2", "-1.0", "1.0.", "v 1.0",
        ])
    func refusesInvalid(input: String) {
        #expect {
            try Version(input)
        } throws: { error in
            guard let error = error as? AutoupdateError else { return false }
            return error.code == .invalidVersion && error.message.contains("not a valid PEP 440 version")
        }
    }

    @Test("error messages say where the text stops being a version")
    func messages() {
        #expect(throws: AutoupdateError.self) { try Version("banana") }
        do {
            _ = try Version("1.0-1-1")
        } catch let error as AutoupdateError {
            #expect(error.message.contains("unexpected '-1'"), "\(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
        do {
            _ = try Version("1.0\u{1B}[2J")
        } catch let error as AutoupdateError {
            #expect(!error.message.contains("\u{1B}"), "control characters are escaped: \(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

@Suite("Version: ordering as packaging orders")
struct VersionOrderingTests {
    /// PEP 440's own example order, plus epochs, trailing zeros and local labels; each inner array
    /// is a class of equal versions.
    static let sortedClasses: [[String]] = [
        ["1.0.dev456", "1.0-dev456", "1.0dev456"],
        ["1.0a1", "1.0alpha1", "1.0.a.1"],
        ["1.0a2.dev456"],
        ["1.0a12.dev456"],
        ["1.0a12"],
        ["1.0b1.dev456"],
        ["1.0b2", "1.0beta2"],
        ["1.0b2.post345.dev456"],
        ["1.0b2.post345", "1.0b2-345"],
        ["1.0rc1.dev456", "1.0c1.dev456"],
        ["1.0rc1", "1.0c1", "1.0pre1", "1.0preview1"],
        ["1.0", "1.0.0", "1", "v1.0", "01.00", "0!1.0"],
        ["1.0+abc.5"],
        ["1.0+abc.7", "1.0+ABC-7", "1.0+abc.07"],
        ["1.0+5"],
        ["1.0+5.abc"],
        ["1.0.post456.dev34"],
        ["1.0.post456", "1.0-456", "1.0.r456", "1.0rev456"],
        ["1.0.15"],
        ["1.1.dev1"],
        ["1.99999999999999999999998"],
        ["1.99999999999999999999999"],
        ["2.0"],
        ["1!0.1"],
    ]

    @Test("follows the order and equalities of PEP 440's examples")
    func orderingLaws() throws {
        let classes = try Self.sortedClasses.map { try $0.map(Version.init) }
        for (i, left) in classes.enumerated() {
            for (j, right) in classes.enumerated() {
                for a in left {
                    for b in right {
                        #expect((a < b) == (i < j), "\(a) < \(b)")
                        #expect((a == b) == (i == j), "\(a) == \(b)")
                        #expect((a > b) == (i > j), "\(a) > \(b)")
                        if i == j {
                            #expect(a.hashValue == b.hashValue, "equal versions \(a), \(b) hash alike")
                        }
                    }
                }
            }
        }
    }

    @Test("sorting shuffled versions restores the order", arguments: [1, 2, 3] as [UInt64])
    func sorting(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let expected = Self.sortedClasses.map { $0[0] }
        let sorted = try expected.shuffled(using: &random).map(Version.init).sorted().map(\.description)
        #expect(sorted == (try expected.map { try Version($0).description }), "seed \(seed)")
    }
}

@Suite("Version: properties over generated strings", .ownThread)
struct VersionPropertyTests {
    @Test("normalizing is idempotent and round-trips", arguments: [11, 12] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        var generator = VersionStringGenerator(seed: seed)
        for _ in 0..<2000 {
            let text = generator.next()
            guard let version = try? Version(text) else { continue }
            let again = try Version(version.description)
            #expect(again == version, "seed \(seed): \(text.debugDescription)")
            #expect(again.description == version.description, "seed \(seed): \(text.debugDescription)")
        }
    }
}
