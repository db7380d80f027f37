import AutoupdateTestSupport
import Testing

@Suite("CLI: autoupdate version")
struct VersionCommandTests {
    @Test("normalize prints the normalized form")
    func normalize() async throws {
        let result = try await autoupdate("version", "normalize", "1.0-RC1")
        #expect(result.status == 0)
        #expect(result.stdout == "1.0rc1\n")
        #expect(result.stderr.isEmpty)
    }

    @Test(
        "compare prints <, == or >",
        arguments: [
            ("1.0rc1", "1.0", "<"), ("1.0", "1.0.0", "=="), ("1.0.post1", "1.0", ">"), ("1!0.1", "2.0", ">"),
        ])
    func compare(left: String, right: String, expected: String) async throws {
        let result = try await autoupdate("version", "compare", left, right)
        #expect(result.status == 0)
        #expect(result.stdout == expected + "\n")
    }

    @Test("an invalid version exits 2 with one clear line on stderr")
    func invalid() async throws {
        let result = try await autoupdate("version", "normalize", "banana")
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("autoupdate: error: 'banana' is not a valid PEP 440 version"))
        #expect(result.stderr.split(separator: "\n").count == 1)

        let compare = try await autoupdate("version", "compare", "1.0", "1.0-")
        #expect(compare.status == 2)
        #expect(compare.stderr.contains("'1.0-'"))
    }

    @Test(
        "matches exits 0 inside the specifier set, 1 outside, 2 for invalid input",
        arguments: [
            ("~=2.1", "2.9", 0), (">=2,<3", "3.0", 1), ("==2.*", "2.0rc1", 0), ("!=2.3.1", "2.3.1", 1),
            ("<2.0", "2.0rc1", 1), (">2.0", "2.0.post1", 1), ("===foo", "foo", 0),
            ("=>2", "2.0", 2), ("~=2", "2.0", 2), (">=2", "banana", 2),
        ] as [(String, String, Int32)])
    func matches(specifier: String, version: String, expected: Int32) async throws {
        let result = try await autoupdate("version", "matches", specifier, version)
        #expect(result.status == expected, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.isEmpty == (expected != 2))
        if expected == 2 {
            #expect(result.stderr.contains(specifier.hasPrefix(">=") ? "'\(version)'" : "'\(specifier)'"))
        }
    }

    @Test("a usage error exits 64")
    func usage() async throws {
        #expect(try await autoupdate("version", "normalize").status == 64)
        #expect(try await autoupdate("version", "normalize", "--log-level", "loud", "1.0").status == 64)
        #expect(try await autoupdate("no-such-command").status == 64)
    }
}

@Suite("CLI: top level")
struct TopLevelTests {
    @Test("--version names ours and the C libraries")
    func version() async throws {
        let result = try await autoupdate("--version")
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("autoupdate 0."))
        for library in ["libcurl", "zlib", "libbz2", "libsodium"] {
            #expect(result.stdout.contains(library))
        }
    }

    @Test("--help lists the commands")
    func help() async throws {
        let result = try await autoupdate("--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("Keep an application up to date and running."))
        #expect(result.stdout.contains("version"))
    }

    @Test("--log-level accepts each level", arguments: ["trace", "debug", "info", "notice", "warning", "error"])
    func logLevels(level: String) async throws {
        let result = try await autoupdate("version", "normalize", "--log-level", level, "1.0")
        #expect(result.status == 0)
        #expect(result.stdout == "1.0\n")
    }
}
