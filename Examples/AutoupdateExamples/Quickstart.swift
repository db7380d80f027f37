import Autoupdate
import Logging

/// The seed's quick start, in Swift: check, update, run.
func quickstart() async throws {
    // The app folder is the current directory, as in pyautoupdate; `folder:` picks another.
    let launcher = try Launcher(filepath: "bin/app", url: "https://example.com/app/",
                                newfiles: "project.zip", logLevel: .warning,
                                args: ["--flag"], kwargs: ["mode": "fast"])
    if try await launcher.checkNew() {            // newer version on the server? (queued in .queue)
        _ = try await launcher.updateCode()       // download, extract, verify, install; false while the app runs
    }
    let code = try await launcher.run()           // foreground: the exit code (−N after signal N)

    try await launcher.run(background: true)      // background: returns once the app has started
    let alive = await launcher.processIsAlive     // also processCodeRunning, processPID, processExitcode
    if try await launcher.processJoin(timeout: .seconds(5)) == nil {
        await launcher.processTerminate()         // SIGTERM to its process group, SIGKILL after the grace
    }
    print(code.map(String.init) ?? "-", alive)
}
