import Autoupdate

/// A beta tester pinned to 2.x, and a publisher's release: the release index from Swift.
func releases() async throws {
    let pin = try VersionSpecifierSet("~=2.1, !=2.3.1")
    print(pin.contains(try Version("2.4")), pin.filter(["2.1", "2.5rc1"]))   // true ["2.1"]

    let configuration = UpdaterConfiguration(channel: "beta", pin: pin)
    let updater = Updater(folder: AppFolder(path: "/opt/myapp"), url: try UpdateURL("https://example.com/myapp/"), configuration: configuration)
    if let prepared = try await updater.prepare() {
        print(prepared.version, prepared.isMandatory, prepared.decision?.reason.rawValue ?? "version.txt")
        try await updater.install(prepared)
    }

    let notes = ReleaseOptions(channel: "beta", rollout: 10, notes: "Starts faster.")
    let published = try Publisher.publish(source: "build/myapp", version: try Version("2.2b1"), to: "site", release: notes)
    print(published.archive, published.index?.serial ?? 0)
    try Publisher.setRollout(of: try Version("2.2b1"), to: 50, in: "site")
}
