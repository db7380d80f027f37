import ArgumentParser
import Autoupdate

/// Where the app is and where its updates come from.
struct UpdateOptions: ParsableArguments {
    @Option(help: "The HTTPS folder that holds version.txt and the archive (http is upgraded to https).")
    var url: String

    @Option(help: "The app folder.")
    var dir: String = "."

    @Option(help: "A PEM file of CA certificates to trust besides the system's (a private CA, a test server).")
    var caFile: String?

    func folder() -> AppFolder {
        AppFolder(path: dir)
    }

    func updateURL() throws -> UpdateURL {
        try UpdateURL(url)
    }

    func downloadConfiguration() -> DownloadConfiguration {
        DownloadConfiguration(caFile: caFile)
    }
}
