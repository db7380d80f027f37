import ArgumentParser
import Autoupdate
import Logging

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the server's version.txt against the installed version.",
        discussion: """
            A newer version is written to .queue and logged in version_check.log \
            ("Old X|New Y|Time T"). A repeat check sends the validator of the last answer, so an \
            unchanged version.txt costs the server a 304. Exit status 0 whether or not an update \
            is available; 1 when the server cannot be reached or its version.txt is invalid.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: UpdateOptions
    @OptionGroup var trust: TrustOptions

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let updater = Updater(
                folder: options.folder(), url: try options.updateURL(),
                configuration: try options.updaterConfiguration(archive: nil, trust: trust),
                logger: Logger(label: "autoupdate"))
            let result = try await updater.check()
            switch result.outcome {
            case .newVersion(let version):
                print("update available: \(result.installed) → \(version)")
            case .upToDate:
                print("up to date: \(result.installed)")
            case .serverInvalid:
                throw AutoupdateError(
                    .corruptedFile,
                    "the server's version.txt is not a valid version (its text is kept in \(options.folder().serverInvalidDumpPath)); nothing to update"
                )
            }
        }
    }
}
