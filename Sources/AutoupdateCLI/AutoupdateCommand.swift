import ArgumentParser
import Autoupdate

@main
struct AutoupdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoupdate",
        abstract: "Keep an application up to date and running.",
        discussion: """
            autoupdate checks a release index (release.json) or a version.txt (PEP 440) at an \
            HTTPS base URL, downloads and \
            verifies the new archive, installs it atomically and runs the app as a supervised \
            child process.
            """,
        version: AutoupdateCommand.versionText,
        subcommands: [
            RunCommand.self, WatchCommand.self, CheckCommand.self, UpdateCommand.self, PublishCommand.self, RolloutCommand.self,
            YankCommand.self, KeygenCommand.self,
            SignCommand.self, VerifyCommand.self, RecoverCommand.self, RollbackCommand.self, StatusCommand.self, ExtractCommand.self,
            VersionCommand.self,
        ]
    )

    /// `autoupdate --version`: ours, then the C libraries, for bug reports.
    static var versionText: String {
        let libraries = AutoupdateInfo.linkedLibraries.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "autoupdate \(AutoupdateInfo.version) (\(libraries))"
    }
}
