import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// An app that records in `events.log` (in the app folder) its start and the SIGTERM it got, then
/// runs until told; or, with `crash`, exits 3 at once. Once its SIGTERM trap is set it says so
/// on `events.fifo` beside the app folder, when there is one.
private func app(_ version: String, crash: Bool = false) -> [String: UpdateScenario.Content] {
    let body =
        crash
        ? "echo \"\(version) crashed\" >> \"$AUTOUPDATE_DIR/events.log\"\nexit 3"
        : """
        trap 'echo "\(version) got TERM" >> "$AUTOUPDATE_DIR/events.log"; exit 0' TERM
        echo "\(version) started" >> "$AUTOUPDATE_DIR/events.log"
        [ -p "$AUTOUPDATE_DIR/../events.fifo" ] && echo "\(version) started" > "$AUTOUPDATE_DIR/../events.fifo"
        while :; do sleep 0.05; done
        """
    return ["bin/app": .text("#!/bin/sh\n\(body)\n", mode: 0o755), "VERSION": .text(version)]
}

private func makeWatcher(
    _ scenario: UpdateScenario, _ server: TestHTTPSServer, interval: Duration = .milliseconds(200), healthWindow: Duration = .seconds(2),
    restart: WatchConfiguration.RestartPolicy = .always
) throws -> Watcher {
    try Watcher(
        filepath: "bin/app", url: server.baseURL.absoluteString, folder: scenario.folder,
        download: .forTests(maxRetries: 0, caFile: TestPKI.caFile),
        checkTimeout: UpdaterConfiguration.testCheckTimeout,
        configuration: WatchConfiguration(
            interval: interval, jitter: .zero, grace: .seconds(5), restart: restart, healthWindow: healthWindow,
            retryBase: .milliseconds(100), maxRestartDelay: .seconds(1)),
        logger: Logger(label: "test"))
}

private func appLog(_ scenario: UpdateScenario) -> [String] {
    ((try? String(contentsOf: scenario.appFolder.appending(path: "events.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(
        String.init)
}

private func installed(_ scenario: UpdateScenario) -> String? {
    scenario.folder.readVersionDoc().value?.description
}

@Suite("Watcher: unattended updates against the HTTPS test server")
struct WatcherTests {
    @Test("v2 is published: it is prepared while v1 runs, v1 gets SIGTERM, v2 runs; a 304 poll downloads nothing")
    func updatesWhileRunning() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let ready = try Fifo(in: scenario.work.url)
            let watcher = try makeWatcher(scenario, server)
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }  // also when an expectation throws: no app left running
            _ = try await events.next("v1 start") { if case .started(_, let version) = $0 { version?.description == "1.0" } else { false } }
            #expect(try await ready.nextLine() == "1.0 started")
            _ = try await events.next("a 304 poll") { if case .upToDate(_, notModified: true) = $0 { true } else { false } }
            #expect(server.requests(for: "/project.zip").count == 1, "polls download nothing")

            try scenario.publish(app("2.0"), version: "2.0")
            _ = try await events.next("v2 prepared") { $0 == .prepared(try! Version("2.0")) }
            let swapped = try await events.next("the swap") { if case .swapped = $0 { true } else { false } }
            guard case .swapped(let from, let to, let gap) = swapped else { return }
            #expect(from.description == "1.0" && to.description == "2.0")
            print("watch: swap gap (old exit → new start) \(gap)")
            _ = try await events.next("v2 start") { if case .started(_, let version) = $0 { version?.description == "2.0" } else { false } }
            #expect(installed(scenario) == "2.0")
            #expect(try await ready.nextLine() == "2.0 started")
            #expect(Array(appLog(scenario).prefix(2)) == ["1.0 started", "1.0 got TERM"])
            // On trial until its health window has passed: the record and the kept v1 are there.
            let updateFolder = scenario.folder.updateDirectory
            #expect(FileManager.default.fileExists(atPath: updateFolder + "/trial.json"))
            #expect(FileManager.default.fileExists(atPath: updateFolder + "/previous-1.0"))
            // Its window's end confirms it (the first check waits for that): the record goes, v1
            // stays kept (--keep 1).
            _ = try await events.next("the check after the health window") { if case .upToDate = $0 { true } else { false } }
            #expect(!FileManager.default.fileExists(atPath: updateFolder + "/trial.json"))
            #expect(FileManager.default.fileExists(atPath: updateFolder + "/previous-1.0"), "kept for autoupdate rollback")
            #expect(
                (try? String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8))?.contains("\"decision\":\"confirmed\"") == true
            )

            watch.cancel()
            #expect(try await watch.value == 0)
            #expect(appLog(scenario).suffix(2) == ["2.0 started", "2.0 got TERM"], "stopped gracefully")
        }
    }

    @Test("a watch follows the release index: its channel, its pin, and a yank with a signed index moves it down")
    func followsTheIndex() async throws {
        let scenario = try UpdateScenario()
        let key = Minisign.generateKeyPair()
        let trust = TrustPolicy(publicKeys: [key.publicKey])
        let pin = try VersionSpecifierSet("<3")
        try scenario.publish(app("1.0"), version: "1.0", signedWith: key, release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await Updater(
                folder: scenario.folder, url: UpdateURL(server.baseURL.absoluteString),
                configuration: .forTests(trust: trust),
                logger: Logger(label: "test")
            ).update()
            let watcher = try Watcher(
                filepath: "bin/app", url: server.baseURL.absoluteString, folder: scenario.folder,
                download: .forTests(maxRetries: 0, caFile: TestPKI.caFile), trust: trust,
                checkTimeout: UpdaterConfiguration.testCheckTimeout, channel: "beta", pin: pin,
                configuration: WatchConfiguration(
                    interval: .milliseconds(200), jitter: .zero, grace: .seconds(5), healthWindow: .milliseconds(300),
                    retryBase: .milliseconds(100), maxRestartDelay: .seconds(1)),
                logger: Logger(label: "test"))
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }
            func swap(_ description: String, to version: String) async throws {
                _ = try await events.next(description) { if case .swapped(_, let to, _) = $0 { to.description == version } else { false } }
                _ = try await events.next("\(version) started") {
                    if case .started(_, let started) = $0 { started?.description == version } else { false }
                }
            }
            _ = try await events.next("1.0 started") {
                if case .started(_, let version) = $0 { version?.description == "1.0" } else { false }
            }

            try scenario.publish(app("2.0b1"), version: "2.0b1", signedWith: key, release: ReleaseOptions(channel: "beta"))
            try await swap("the beta", to: "2.0b1")
            try scenario.publish(app("3.0"), version: "3.0", signedWith: key, release: ReleaseOptions())
            _ = try await events.next("3.0 left out by the pin") {
                if case .upToDate(let installed, _) = $0 { installed.description == "2.0b1" } else { false }
            }
            try Publisher.yank(try Version("2.0b1"), in: scenario.serverFolder.path, secretKey: key)
            try await swap("moving off the yanked beta", to: "1.0")
            #expect(installed(scenario) == "1.0")
            watch.cancel()
            #expect(try await watch.value == 0)
        }
    }

    @Test("a server app runs the watcher in its own ServiceGroup: a graceful shutdown stops the app with SIGTERM and ends the watch with 0")
    func serviceGroup() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let ready = try Fifo(in: scenario.work.url)
            let watcher = try makeWatcher(scenario, server)
            let group = ServiceGroup(services: [watcher], logger: Logger(label: "test"))
            let running = Task { try await group.run() }
            defer { running.cancel() }
            #expect(try await ready.nextLine() == "1.0 started")
            await group.triggerGracefulShutdown()
            try await TestTiming.within(.seconds(20), "the group's end") { try await running.value }
            #expect(await watcher.exitCode == 0)
            #expect(appLog(scenario) == ["1.0 started", "1.0 got TERM"])
        }
    }

    @Test(
        "a v2 that crashes at start is rolled back to v1 (its empty folders and folder modes too) and not retried; a working v3 then installs"
    )
    func rollback() async throws {
        let scenario = try UpdateScenario()
        let v1Extras: [String: UpdateScenario.Content] = [
            "cache": .folder(mode: 0o700), "conf": .folder(mode: 0o750), "conf/app.conf": .text("1\n"),
        ]
        try scenario.publish(app("1.0").merging(v1Extras) { $1 }, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let watcher = try makeWatcher(scenario, server, healthWindow: .seconds(30))
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }  // also when an expectation throws: no app left running
            _ = try await events.next("v1 start") { if case .started = $0 { true } else { false } }

            try scenario.publish(app("2.0", crash: true), version: "2.0")
            let rolledBack = try await events.next("the rollback") { if case .rolledBack = $0 { true } else { false } }
            guard case .rolledBack(let bad, let to, let reason) = rolledBack else { return }
            #expect(bad.description == "2.0" && to.description == "1.0")
            #expect(reason.contains("exited with code 3"), "\(reason)")
            _ = try await events.next("v1 restarted") {
                if case .started(_, let version) = $0 { version?.description == "1.0" } else { false }
            }
            #expect(installed(scenario) == "1.0")
            #expect(try String(contentsOf: scenario.appFolder.appending(path: "VERSION"), encoding: .utf8) == "1.0")
            let files = try scenario.appFiles()
            #expect(files.nodes["cache"] == .directory(mode: 0o700), "the empty folder is back: \(files)")
            #expect(files.nodes["conf"] == .directory(mode: 0o750))
            _ = try await events.next("2.0 skipped") { $0 == .skippedBad(try! Version("2.0")) }
            #expect(server.requests(for: "/project.zip").count == 2, "the bad version is not downloaded again")
            let audit = try String(contentsOf: URL(fileURLWithPath: scenario.folder.auditLogPath), encoding: .utf8)
            #expect(audit.contains(#""decision":"rolled-back""#))

            try scenario.publish(app("3.0"), version: "3.0")
            _ = try await events.next("v3 installed") { if case .swapped(_, let to, _) = $0 { to.description == "3.0" } else { false } }
            _ = try await events.next("v3 start") { if case .started(_, let version) = $0 { version?.description == "3.0" } else { false } }
            watch.cancel()
            #expect(try await watch.value == 0)
        }
    }

    @Test("a v2 that is ready within its window and crashes after it is restarted, not rolled back")
    func crashAfterTheWindow() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            // Ready at once; crashes 2.5 s after its first start (past the 1 s window), then runs.
            let script = """
                #!/bin/sh
                echo "2.0 started" >> "$AUTOUPDATE_DIR/events.log"
                touch "$AUTOUPDATE_DIR/ready"
                if [ ! -e "$AUTOUPDATE_DIR/crashed" ]; then sleep 2.5; touch "$AUTOUPDATE_DIR/crashed"; exit 3; fi
                exec sleep 600
                """
            let watcher = try Watcher(
                filepath: "bin/app", url: server.baseURL.absoluteString, folder: scenario.folder,
                download: .forTests(maxRetries: 0, caFile: TestPKI.caFile),
                checkTimeout: UpdaterConfiguration.testCheckTimeout,
                configuration: WatchConfiguration(
                    interval: .milliseconds(200), jitter: .zero, grace: .seconds(5), healthWindow: .seconds(1),
                    retryBase: .milliseconds(100), maxRestartDelay: .seconds(1),
                    health: HealthCheck(command: "test -e \"$AUTOUPDATE_DIR/ready\"", interval: .milliseconds(50))),
                logger: Logger(label: "test"))
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }
            _ = try await events.next("v1 start") { if case .started = $0 { true } else { false } }
            try scenario.publish(["bin/app": .text(script, mode: 0o755)], version: "2.0")
            _ = try await events.next("the swap") { if case .swapped = $0 { true } else { false } }
            _ = try await events.next("v2's crash") { if case .exited(_, let status) = $0 { status == .exited(3) } else { false } }
            _ = try await events.next("v2 restarted") {
                if case .started(_, let version) = $0 { version?.description == "2.0" } else { false }
            }
            let rolledBack = events.all.filter { event in
                guard case .rolledBack = event else { return false }
                return true
            }
            #expect(rolledBack.isEmpty, "\(events.all)")
            #expect(installed(scenario) == "2.0" && scenario.folder.readBadVersions().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json"), "confirmed")
            watch.cancel()
            #expect(try await watch.value == 0)
        }
    }

    @Test("the server goes down: the app keeps running, checks back off; once it is back (asking to wait) the update comes")
    func serverDown() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        let first = try await TestHTTPSServer.start(root: scenario.serverFolder)
        let port = try #require(first.baseURL.port)
        _ = try await makeUpdater(scenario, first).update()
        let watcher = try makeWatcher(scenario, first, interval: .seconds(60))
        let events = EventRecorder(watcher.events)
        let watch = Task { try await watcher.run() }
        defer { watch.cancel() }
        _ = try await events.next("v1 start") { if case .started = $0 { true } else { false } }
        await first.stop()
        try scenario.publish(app("2.0"), version: "2.0")
        watcher.checkNow()
        var delays: [Duration] = []
        for _ in 0..<3 {
            let failed = try await events.next("a failed check") { if case .checkFailed = $0 { true } else { false } }
            if case .checkFailed(let message, let retryIn) = failed {
                #expect(message.contains("connect"), "\(message)")
                delays.append(retryIn)
            }
        }
        #expect(delays[0] < delays[1] && delays[1] < delays[2], "exponential backoff: \(delays)")

        // Back, on the same port, first asking clients to wait a second.
        let second = try await TestHTTPSServer.start(root: scenario.serverFolder, port: port)
        second.inject([.status(503, retryAfter: "1")], at: "/version.txt", times: 1)
        let busy = try await events.next("a 503") { if case .checkFailed(let message, _) = $0 { message.contains("503") } else { false } }
        if case .checkFailed(_, let retryIn) = busy {
            #expect(retryIn >= .seconds(1), "Retry-After honoured: \(retryIn)")
        }
        _ = try await events.next("the update") { if case .swapped(_, let to, _) = $0 { to.description == "2.0" } else { false } }
        let all = events.all
        let firstExit = all.firstIndex { if case .exited = $0 { true } else { false } }
        let swap = all.firstIndex { if case .swapped = $0 { true } else { false } }
        #expect(firstExit.map { $0 > swap ?? 0 } ?? true, "the app ran through the outage; only the swap stopped it: \(all)")
        watch.cancel()
        #expect(try await watch.value == 0)
        await second.stop()
    }

    @Test(
        "a hostile Retry-After (Int64.max seconds, a date in 2099) neither crashes the watch nor stops its checks",
        arguments: [
            "9223372036854775807", "Fri, 01 Jan 2099 00:00:00 GMT",
        ])
    func hostileRetryAfter(header: String) async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            let watcher = try makeWatcher(scenario, server, interval: .milliseconds(300))
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }
            _ = try await events.next("v1 start") { if case .started = $0 { true } else { false } }
            try scenario.publish(app("2.0"), version: "2.0")
            server.inject([.status(503, retryAfter: header)], at: "/version.txt", times: 1)
            watcher.checkNow()
            let busy = try await events.next("the 503") {
                if case .checkFailed(let message, _) = $0 { message.contains("503") } else { false }
            }
            if case .checkFailed(_, let retryIn) = busy {
                #expect(retryIn <= .milliseconds(1200), "capped at 4 intervals: \(retryIn)")
            }
            _ = try await events.next("the update, at the next check") {
                if case .swapped(_, let to, _) = $0 { to.description == "2.0" } else { false }
            }
            watch.cancel()
            #expect(try await watch.value == 0)
        }
    }

    @Test("an app that exits on its own: restarted with backoff (always), or its exit ends the watch (never; on-failure after exit 0)")
    func restartPolicies() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0", crash: true), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            _ = try await makeUpdater(scenario, server).update()
            #expect(try await makeWatcher(scenario, server, interval: .seconds(60), restart: .never).run() == 3)

            let watcher = try makeWatcher(scenario, server, interval: .seconds(60), restart: .always)
            let events = EventRecorder(watcher.events)
            let watch = Task { try await watcher.run() }
            defer { watch.cancel() }
            for run in 1...3 {
                _ = try await events.next("start \(run)") { if case .started = $0 { true } else { false } }
                _ = try await events.next("exit \(run)") { if case .exited(_, .exited(3)) = $0 { true } else { false } }
            }
            watch.cancel()
            #expect(try await watch.value == 0)
            #expect(appLog(scenario).count >= 4, "one run under never, three or more under always")

            // on-failure: a clean exit ends the watch (a failing one is restarted, as under always).
            try UpdateScenario.write(["bin/app": .text("#!/bin/sh\nexit 0\n", mode: 0o755)], to: scenario.appFolder)
            #expect(try await makeWatcher(scenario, server, interval: .seconds(60), restart: .onFailure).run() == 0)
        }
    }
}
