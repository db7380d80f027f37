import ArgumentParser
import Autoupdate
import Logging

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put a kept version back (watch --keep N keeps the versions it replaces).",
        discussion: """
            Journaled as every install. The version replaced is kept in turn and marked bad, so \
            that no update installs it again. Refused while the app runs: stop it (or its watch) \
            first. `autoupdate status` lists the kept versions.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The app folder.")
    var dir: String = "."

    @Option(help: "The kept version to put back. Default: the highest kept version below the installed one.")
    var to: String?

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let target = try to.map { try Version($0) }
            // A rollback needs no server: the URL is never used.
            let updater = Updater(
                folder: AppFolder(path: dir), url: try UpdateURL("https://localhost/"), logger: Logger(label: "autoupdate"))
            if updater.hasInterruptedInstall {
                _ = try await updater.recover()
            }
            let (from, to) = try await updater.rollBack(toKept: target)
            print("rolled back \(from) → \(to); \(from) is kept and will not be installed again by an update")
        }
    }
}
