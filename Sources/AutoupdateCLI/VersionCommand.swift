import ArgumentParser
import Autoupdate

struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Normalize, compare and match PEP 440 versions.",
        discussion: "An invalid version or specifier exits with status 2 and says what is wrong with it.",
        subcommands: [Normalize.self, Compare.self, Matches.self]
    )
}

extension VersionCommand {
    struct Normalize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the normalized form of a version (1.0-RC1 → 1.0rc1)."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A PEP 440 version.")
        var version: String

        func run() async throws {
            global.bootstrapLogging()
            try await Failure.reporting {
                print(try Version(version))
            }
        }
    }

    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print <, == or > for the order of two versions, as PEP 440 defines it."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The left-hand version.")
        var first: String

        @Argument(help: "The right-hand version.")
        var second: String

        func run() async throws {
            global.bootstrapLogging()
            try await Failure.reporting {
                let (left, right) = (try Version(first), try Version(second))
                print(left < right ? "<" : left == right ? "==" : ">")
            }
        }
    }

    struct Matches: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 when a version satisfies a PEP 440 specifier set (~=2.1, >=2,<3, ==2.*), 1 when not.",
            discussion: """
                Matching is exactly Python packaging's SpecifierSet.contains: a pre-release that \
                satisfies every specifier matches. Exit 2 for an invalid specifier or version.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A specifier set, such as '>=2,<3' (quote it in a shell).")
        var specifier: String

        @Argument(help: "A PEP 440 version.")
        var version: String

        func run() async throws {
            global.bootstrapLogging()
            try await Failure.reporting {
                let set = try VersionSpecifierSet(specifier)
                if set.contains(version) {
                    return
                }
                _ = try Version(version)  // not a version and not matched by ===: say so, exit 2
                throw ExitCode(1)
            }
        }
    }
}
