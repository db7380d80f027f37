import ArgumentParser
import Autoupdate
import Logging

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put a kept version back (watch --keep N keeps the versions it replaces).",
        discussion: """
            Journaled as every install. The version replaced is kept in turn and marked bad, so \
            that no update installs it again. When 'autoupdate watch' runs the app, the watch is \
            asked (a request file and SIGUSR1): it stops the app, rolls back and starts the \
            version put back. Refused while the app runs otherwise ('autoupdate run'): stop it \
            first. `autoupdate status` lists the kept versions.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The app folder.")
    var dir: String = "."

    @Option(help: "The kept version to put back. Default: the highest kept version below the installed one.")
    var to: String?

    @Option(help: "Seconds a running watch has to answer (it stops the app first, within its --grace).")
    var timeout: Double = 60

    func validate() throws {
        guard timeout > 0, timeout.isFinite else {
            throw ValidationError("--timeout must be a positive number of seconds")
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let target = try to.map { try Version($0) }
            // A rollback needs no server: the URL is never used.
            let updater = Updater(
                folder: AppFolder(path: dir), url: try UpdateURL("https://localhost/"), logger: Logger(label: "autoupdate"))
            let watch = updater.folder.runningWatch()
            // A running watch recovers its own folder; recovering under it would race its install.
            if watch == nil, updater.hasInterruptedInstall {
                _ = try await updater.recover()
            }
            let (from, to) = try await updater.rollBack(toKept: target, waitingFor: .milliseconds(Int64(timeout * 1000)))
            let by = watch.map { " by the watch (pid \($0.pid)), which runs \(to) now" } ?? ""
            print("rolled back \(from) → \(to)\(by); \(from) is kept and will not be installed again by an update")
        }
    }
}
