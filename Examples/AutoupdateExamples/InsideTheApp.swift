import Autoupdate

/// Inside an app started by a launcher: the seed's `check_new`.
func insideTheApp() async throws {
    if let context = try UpdateContext.fromEnvironment(), try await context.checkNew() {
        print("an update is queued; it installs at the next start")
    }
}
