import ArgumentParser
import Autoupdate

struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Normalize and compare PEP 440 versions.",
        discussion: "An invalid version exits with status 2 and says what is wrong with it.",
        subcommands: [Normalize.self, Compare.self]
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
}
