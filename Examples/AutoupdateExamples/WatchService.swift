import Autoupdate
import Logging
import ServiceLifecycle
import UnixSignals

/// A server app that keeps another program running and up to date inside its own service group.
func watchService() async throws {
    let watcher = try Watcher(
        filepath: "bin/server", url: "https://example.com/server/",
        folder: AppFolder(path: "/opt/server"),
        configuration: WatchConfiguration(interval: .seconds(60)))
    let group = ServiceGroup(
        services: [watcher], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "server"))
    try await group.run()
}
