import Autoupdate

/// Updating an installed app with an ``Updater``.
func updateInstalledApp() async throws {
    let updater = Updater(folder: AppFolder(path: "/opt/myapp"),
                          url: try UpdateURL("https://example.com/myapp/"),
                          configuration: UpdaterConfiguration(archive: try ArchiveName("project.tar.gz")))
    if try await updater.checkNew() {                       // the seed's check_new
        switch try await updater.update(onEvent: { print($0) }) {
        case .updated(let from, let to): print("updated \(from) → \(to)")
        case .upToDate(let version): print("up to date: \(version)")
        case .serverInvalid: print("the server's version.txt is not a version")
        }
    }
}
