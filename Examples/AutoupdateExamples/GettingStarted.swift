import Autoupdate

/// The documentation's getting-started example: a signed update, then the app.
func gettingStarted() async throws {
    let launcher = try Launcher(
        filepath: "bin/app", url: "https://example.com/app/",
        folder: AppFolder(path: "/opt/app"),
        trust: TrustPolicy(publicKeys: [try Minisign.PublicKey(text: "RWQ…")]))
    if try await launcher.checkNew() {
        _ = try await launcher.updateCode()
    }
    let status = try await launcher.run()
    print(status.map(String.init) ?? "-")
}
