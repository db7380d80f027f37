import ArgumentParser
import Autoupdate
import Foundation

/// Where the app is and where its updates come from.
///
/// Inside an app started by `autoupdate run` (or a ``Launcher``) every option may be left out:
/// the launcher's environment (``UpdateContext``) supplies it, as the seed's `check_new` did.
struct UpdateOptions: ParsableArguments {
    @Option(help: "The HTTPS folder that holds version.txt and the archive (http is upgraded to https). Default: $AUTOUPDATE_URL.")
    var url: String?

    @Option(help: "The app folder. Default: $AUTOUPDATE_DIR, else the current directory.")
    var dir: String?

    @Option(help: "A PEM file of CA certificates to trust besides the system's (a private CA, a test server). Default: $AUTOUPDATE_CA_FILE.")
    var caFile: String?

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        if url == nil, environment[UpdateContext.Variable.url] == nil {
            throw ValidationError("Missing --url (inside an app started by 'autoupdate run', $AUTOUPDATE_URL stands in for it).")
        }
    }

    func folder() -> AppFolder {
        AppFolder(path: dir ?? environment[UpdateContext.Variable.folder] ?? ".")
    }

    func updateURL() throws -> UpdateURL {
        try UpdateURL(url ?? environment[UpdateContext.Variable.url] ?? "")
    }

    func downloadConfiguration() -> DownloadConfiguration {
        DownloadConfiguration(caFile: caFile ?? environment[UpdateContext.Variable.caFile])
    }

    /// `--archive`, else the launcher's `$AUTOUPDATE_NEWFILES`, else `project.zip`.
    func archiveName(_ option: String?) throws -> ArchiveName {
        try ArchiveName(option ?? environment[UpdateContext.Variable.newfiles] ?? ArchiveName.default.name)
    }
}
