import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

@Suite("CLI: autoupdate watch")
struct WatchCommandTests {
    /// The app, with 256 KiB of incompressible data: a download that a dripping server makes last.
    private func app(_ version: String) -> [String: UpdateScenario.Content] {
        let script = """
            #!/bin/sh
            trap 'echo "\(version) got TERM" >> "$AUTOUPDATE_DIR/events.log"; exit 0' TERM
            echo "\(version) ready" > "$AUTOUPDATE_DIR/../events.fifo"
            while :; do sleep 0.05; done
            """
        var generator = SystemRandomNumberGenerator()
        let data = (0..<(256 << 10)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return ["bin/app": .text(script, mode: 0o755), "data.bin": .bytes(data)]
    }

    /// Awaits a line of the watch's stderr that contains `text`.
    private func line(_ process: LiveProcess, containing text: String) async throws -> String {
        try await TestTiming.within(.seconds(30), "a line with \(quoted(text))") {
            for await line in process.stderrLines where line.contains(text) { return line }
            throw TestFailure("the watch ended before printing \(text)")
        }
    }

    private func quoted(_ text: String) -> String { "'\(text)'" }

    @Test("SIGTERM during a download leaves v1 installed and nothing half-done; SIGHUP checks at once")
    func signals() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(app("1.0"), version: "1.0")
        let ready = try Fifo(in: scenario.work.url)
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            let arguments = [
                "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--interval", "3600", "--jitter", "0",
                "--health-window", "1",
            ]

            try scenario.publish(app("2.0"), version: "2.0")
            server.inject([.drip(bytes: 64, every: .milliseconds(50))], at: "/project.zip")
            let interrupted = try LiveProcess(BuiltProducts.cli, arguments)
            _ = try await line(interrupted, containing: "started 1.0")
            #expect(try await ready.nextLine() == "1.0 ready")
            interrupted.signal(SIGHUP)
            _ = try await line(interrupted, containing: "2.0 is available; downloading")
            interrupted.signal(SIGTERM)
            #expect(try await interrupted.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
            #expect(scenario.folder.readVersionDoc().value?.description == "1.0")
            let log = try String(contentsOf: scenario.appFolder.appending(path: "events.log"), encoding: .utf8)
            #expect(log == "1.0 got TERM\n", "the app was stopped gracefully")
            let updateFolder = try FileManager.default.contentsOfDirectory(atPath: scenario.folder.updateDirectory)
            #expect(
                !updateFolder.contains { $0.hasPrefix("staging-") || $0.hasPrefix("backup-") || $0 == "journal.json" }, "\(updateFolder)")

            server.clearFaults()
            let watch = try LiveProcess(BuiltProducts.cli, arguments)
            _ = try await line(watch, containing: "started 1.0")
            #expect(try await ready.nextLine() == "1.0 ready")
            watch.signal(SIGHUP)
            let updated = try await line(watch, containing: "updated 1.0 → 2.0")
            #expect(updated.contains("the app was down for"))
            _ = try await line(watch, containing: "started 2.0")
            #expect(try await ready.nextLine() == "2.0 ready")
            watch.signal(SIGTERM)
            #expect(try await watch.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
            #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
        }
    }

    /// An app that notes each start (version and pid) in `starts.log` beside the app folder.
    private func noting(_ version: String) -> [String: UpdateScenario.Content] {
        let script = """
            #!/bin/sh
            echo "\(version) $$" >> "$AUTOUPDATE_DIR/../starts.log"
            exec sleep 600
            """
        return ["bin/app": .text(script, mode: 0o755)]
    }

    /// The watch's stderr lines up to the first that contains `text` (included).
    private func lines(_ process: LiveProcess, until text: String) async throws -> [String] {
        try await TestTiming.within(.seconds(30), "a line with \(quoted(text))") {
            var seen: [String] = []
            for await line in process.stderrLines {
                seen.append(line)
                if line.contains(text) { return seen }
            }
            throw TestFailure("the watch ended before printing \(text): \(seen)")
        }
    }

    /// `autoupdate status --json`, as a script reads it.
    private struct StatusReport: Decodable {
        struct Trial: Decodable, Equatable {
            let candidate: String
            let previous: String
            let starts: Int
            let maxStarts: Int
            let rollingBack: Bool
        }
        let folder: String
        let installed: String?
        let highest: String?
        let kept: [String]
        let trial: Trial?
        let bad: [String]
        let queued: String?
        let interruptedInstall: Bool
        let watchPID: Int32?
    }

    private func status(_ dir: String) async throws -> StatusReport {
        let result = try await autoupdate("status", "--dir", dir, "--json")
        try #require(result.status == 0, "\(result.stderr)")
        return try JSONDecoder().decode(StatusReport.self, from: Data(result.stdout.utf8))
    }

    /// What an app calling `sd_notify(0, "READY=1")` does, in Python (an abstract `@` address too).
    static let notifyingReady = """
        exec python3 -c 'import os, socket, time
        a = os.environ["NOTIFY_SOCKET"]
        a = "\\0" + a[1:] if a.startswith("@") else a
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"STATUS=warming up\\nREADY=1", a)
        time.sleep(600)'
        """

    /// The pid in a `started V (pid N)` line.
    private func pid(in line: String) throws -> Int32 {
        let digits = line.split(separator: "(pid ").last?.prefix { $0.isNumber } ?? ""
        return try #require(Int32(digits), "no pid in \(line)")
    }

    @Test(
        "the watch and its app killed during the health window: the next watch gives v2 its remaining starts, then puts v1 back before any process of v2 starts",
        arguments: [1, 3])
    func trialSurvivesKills(attempts: Int) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(noting("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            try scenario.publish(noting("2.0"), version: "2.0")
            let arguments = [
                "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--interval", "3600", "--jitter", "0",
                "--health-window", "600", "--trial-attempts", String(attempts), "--grace", "1",
            ]
            /// Kills the watch and its app at once (as a power cut would).
            func killBoth(_ watch: LiveProcess, app line: String) async throws {
                let app = try pid(in: line)
                // Once the app has noted its start (its own first act, which no event announces).
                let log = scenario.work.url.appending(path: "starts.log")
                let noted = try await eventually(within: TestTiming.bound(.seconds(10))) {
                    ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains(" \(app)\n") ? true : nil
                }
                #expect(noted == true, "the app \(app) did not note its start")
                watch.signal(SIGKILL)
                kill(app, SIGKILL)
                #expect(try await watch.waitForExit() == SIGKILL)
                #expect(try await ProcessTable.waitUntilEnded(app))
            }
            let first = try LiveProcess(BuiltProducts.cli, arguments)
            _ = try await lines(first, until: "started 1.0")
            first.signal(SIGHUP)
            let updated = try await lines(first, until: "started 2.0")
            try await killBoth(first, app: try #require(updated.last))
            #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
            #expect(FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json"))
            // `status` tells it, from the folder alone.
            let onTrial = try await status(dir)
            #expect(onTrial.installed == "2.0" && onTrial.kept == ["1.0"] && onTrial.bad.isEmpty, "\(onTrial)")
            #expect(
                onTrial.trial == StatusReport.Trial(candidate: "2.0", previous: "1.0", starts: 1, maxStarts: attempts, rollingBack: false))
            let text = try await autoupdate("status", "--dir", dir)
            #expect(text.stdout.contains("on trial: 2.0, start 1 of \(attempts), 1.0 kept to go back to"), "\(text.stdout)")

            // Each further watch while starts are left: v2 again, still on trial.
            for _ in 1..<attempts {
                let again = try LiveProcess(BuiltProducts.cli, arguments)
                let started = try await lines(again, until: "started")
                #expect(started.last?.contains("started 2.0") == true, "\(started)")
                try await killBoth(again, app: try #require(started.last))
            }
            // Then v1 comes back before anything starts.
            let last = try LiveProcess(BuiltProducts.cli, arguments)
            let seen = try await lines(last, until: "started")
            #expect(seen.last?.contains("started 1.0") == true, "\(seen)")
            #expect(seen.contains { $0.contains("rolled back 2.0 → 1.0") }, "\(seen)")
            #expect(scenario.folder.readVersionDoc().value?.description == "1.0")
            #expect(scenario.folder.readBadVersions().map(\.description) == ["2.0"])
            #expect(!FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json"))
            let after = try await status(dir)
            #expect(after.installed == "1.0" && after.trial == nil && after.kept.isEmpty && after.bad == ["2.0"], "\(after)")
            #expect(after.highest == "2.0", "the floor stays, and status shows it")
            let v1 = try pid(in: seen.last ?? "")
            let noted = try await eventually(within: TestTiming.bound(.seconds(10))) {
                ((try? String(contentsOf: scenario.work.url.appending(path: "starts.log"), encoding: .utf8)) ?? "").contains(" \(v1)\n")
                    ? true : nil
            }
            #expect(noted == true)
            last.signal(SIGTERM)
            #expect(try await last.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
            let starts = try String(contentsOf: scenario.work.url.appending(path: "starts.log"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: " ")[0] }
            #expect(starts == ["1.0", "2.0"] + Array(repeating: "2.0", count: attempts - 1) + ["1.0"], "\(starts)")
        }
    }

    @Test(
        "--health-cmd, --health-url, --ready notify: a new version never ready is rolled back within its window (+2 s); one that becomes ready is confirmed",
        arguments: [("cmd", false), ("cmd", true), ("url", false), ("url", true), ("notify", false), ("notify", true)] as [(String, Bool)])
    func readiness(probe: String, becomesReady: Bool) async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(noting("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            var v2 = noting("2.0")
            let port = try freeLoopbackPort()
            if becomesReady, case .text(let script, let mode) = v2["bin/app"] {
                let ready =
                    switch probe {
                    case "cmd": "touch \"$AUTOUPDATE_DIR/ready\"; exec sleep 600"
                    case "url": "exec python3 -m http.server \(port) --bind 127.0.0.1 --directory \"$AUTOUPDATE_DIR\""
                    default: Self.notifyingReady
                    }
                v2["bin/app"] = .text(script.replacingOccurrences(of: "exec sleep 600", with: ready), mode: mode)
            }
            // Python starts slowly on a loaded machine: a longer window to be ready in.
            let window = probe != "cmd" && becomesReady ? "5" : "1.5"
            let check =
                switch probe {
                case "cmd": ["--health-cmd", "test -e \"$AUTOUPDATE_DIR/ready\""]
                case "url": ["--health-url", "http://127.0.0.1:\(port)/"]
                default: ["--ready", "notify"]
                }
            try scenario.publish(v2, version: "2.0")
            // With --ready notify, the watch runs as under systemd Type=notify: it has a
            // NOTIFY_SOCKET of its own, and says READY=1 there once the app has.
            let systemd = probe == "notify" ? try DatagramListener(path: scenario.work.url.appending(path: "systemd.sock").path) : nil
            let watch = try LiveProcess(
                "/usr/bin/env",
                (systemd.map { ["NOTIFY_SOCKET=\($0.path)"] } ?? []) + [BuiltProducts.cli]
                    + [
                        "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--interval", "3600", "--jitter", "0",
                        "--health-window", window, "--health-interval", "0.1", "--grace", "1",
                    ] + check)
            _ = try await lines(watch, until: "started 1.0")
            watch.signal(SIGHUP)
            _ = try await lines(watch, until: "started 2.0")
            let clock = ContinuousClock()
            let startedAt = clock.now
            if becomesReady {
                let confirmed = try await eventually(within: .seconds(20)) {
                    FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json") ? nil : true
                }
                // (That it is not confirmed before the window's end is the state machine's table test.)
                #expect(confirmed == true, "the trial ends once the window has passed")
                #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
                #expect(scenario.folder.readBadVersions().isEmpty)
                if let systemd {
                    let told = try systemd.receive(within: TestTiming.bound(.seconds(10)))
                    #expect(told?.contains("READY=1") == true, "systemd was told: \(told ?? "nothing")")
                }
            } else {
                if probe == "notify" {
                    // Another process saying READY=1 on the app's socket (a late message of the
                    // replaced version, say) does not count.
                    try DatagramListener.send("READY=1", to: scenario.folder.updateDirectory + "/notify-\(watch.pid).sock")
                }
                let seen = try await lines(watch, until: "rolled back 2.0 → 1.0")
                #expect(seen.last?.contains("not ready within its 1.5 s health window") == true, "\(seen)")
                // The goal is the window + 2 s (about 2 s alone); the bound allows for a suite that
                // loads both cores (3.9 s seen), and still catches a watch that never judges.
                #expect(clock.now - startedAt < TestTiming.bound(.seconds(10)), "the window + 2 s is the goal: \(clock.now - startedAt)")
                _ = try await lines(watch, until: "started 1.0")
                #expect(scenario.folder.readVersionDoc().value?.description == "1.0")
                #expect(scenario.folder.readBadVersions().map(\.description) == ["2.0"])
            }
            watch.signal(SIGTERM)
            #expect(try await watch.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
        }
    }

    @Test(
        "autoupdate rollback while a watch runs the app: the watch is asked (SIGUSR1), cancels the download under way, stops the app, rolls back and starts the version put back"
    )
    func rollbackThroughTheWatch() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(noting("1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            try scenario.publish(noting("2.0"), version: "2.0")
            let arguments = [
                "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--interval", "3600", "--jitter", "0",
                "--health-window", "0.3", "--grace", "1", "--keep", "2",
            ]
            let watch = try LiveProcess(BuiltProducts.cli, arguments)
            _ = try await lines(watch, until: "started 1.0")
            watch.signal(SIGHUP)
            let v2 = try pid(in: try #require(try await lines(watch, until: "started 2.0").last))
            // Confirmed once its window has passed: the trial record goes, 1.0 stays kept.
            let confirmed = try await eventually(within: TestTiming.bound(.seconds(10))) {
                FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json") ? nil : true
            }
            #expect(confirmed == true)

            // A second watch of the same folder is refused; the first one goes on.
            let second = try await ChildProcess.run(BuiltProducts.cli, arguments, timeout: TestTiming.bound(.seconds(20)))
            #expect(second.status != 0 && second.stderr.contains("another watch runs the app"), "\(second.stderr)")
            // A request the watch cannot do is refused by it, and the app is left alone.
            let missing = try await autoupdate("rollback", "--dir", dir, "--to", "9.9")
            #expect(missing.status != 0 && missing.stderr.contains("no kept version 9.9"), "\(missing.stderr)")
            #expect(kill(v2, 0) == 0, "the app still runs")

            // 3.0 downloads slowly; the rollback does not wait for it.
            var v3 = noting("3.0")
            // Incompressible: at 64 bytes per 50 ms, minutes of download.
            v3["data.bin"] = .bytes(Fixtures.randomBytes(count: 64 << 10, seed: 3))
            try scenario.publish(v3, version: "3.0")
            server.inject([.drip(bytes: 64, every: .milliseconds(50))], at: "/project.zip")
            watch.signal(SIGHUP)
            _ = try await lines(watch, until: "3.0 is available; downloading")
            let started = ContinuousClock.now
            let back = try await autoupdate("rollback", "--dir", dir)
            #expect(back.status == 0 && back.stdout.contains("rolled back 2.0 → 1.0 by the watch"), "\(back.stdout)\(back.stderr)")
            #expect(ContinuousClock.now - started < TestTiming.bound(.seconds(10)), "the download under way was cancelled")
            let seen = try await lines(watch, until: "started 1.0")
            #expect(seen.contains { $0.contains("rolled back 2.0 → 1.0: a rollback was asked for") }, "\(seen)")
            #expect(try await ProcessTable.waitUntilEnded(v2))
            let after = try await status(dir)
            #expect(after.installed == "1.0" && after.kept == ["2.0"] && after.bad == ["2.0"] && after.trial == nil, "\(after)")
            #expect(after.watchPID == watch.pid)

            watch.signal(SIGTERM)
            #expect(try await watch.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
            #expect(scenario.folder.readVersionDoc().value?.description == "1.0", "3.0 was never installed")
            #expect(try await status(dir).watchPID == nil)
            let starts = try String(contentsOf: scenario.work.url.appending(path: "starts.log"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: " ")[0] }
            #expect(starts == ["1.0", "2.0", "1.0"], "\(starts)")
            // With the watch gone, rollback works on the folder itself.
            let forward = try await autoupdate("rollback", "--dir", dir, "--to", "2.0")
            #expect(forward.status == 0 && !forward.stdout.contains("by the watch"), "\(forward.stdout)\(forward.stderr)")
        }
    }

    @Test("--watchdog: an app that says READY=1 and then stops pinging is stopped as hung and started again")
    func watchdog() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        var app = noting("1.0")
        if case .text(let script, let mode) = app["bin/app"] {
            app["bin/app"] = .text(script.replacingOccurrences(of: "exec sleep 600", with: Self.notifyingReady), mode: mode)
        }
        try scenario.publish(app, version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            let watch = try LiveProcess(
                BuiltProducts.cli,
                [
                    "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--interval", "3600", "--jitter", "0",
                    "--ready", "notify", "--watchdog", "0.5", "--grace", "1",
                ])
            let first = try await lines(watch, until: "started 1.0")
            let hung = try await lines(watch, until: "missed its watchdog")
            let again = try await lines(watch, until: "started 1.0")
            #expect(try pid(in: first.last ?? "") != pid(in: again.last ?? ""), "\(first + hung + again)")
            watch.signal(SIGTERM)
            #expect(try await watch.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
        }
    }

    @Test("readiness flags that cannot work are usage errors naming them")
    func readinessFlags() async throws {
        let base = ["watch", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", "/nonexistent"]
        for (flags, message) in [
            (["--health-url", "http://example.com/healthz"], "must be on 127.0.0.1, ::1 or localhost"),
            (["--health-url", "ftp://127.0.0.1/"], "must be http or https"),
            (["--health-cmd", "true", "--health-url", "http://127.0.0.1:8080/"], "give one of them"),
            (["--ready", "notify", "--health-cmd", "true"], "give one of them"),
            (["--health-cmd", " "], "--health-cmd must be a command"),
            (["--health-passes", "0"], "--health-passes must be 1 or more"),
            (["--trial-attempts", "0"], "--trial-attempts must be 1 or more"),
            (["--watchdog", "5"], "--watchdog needs --ready notify"),
        ] {
            let result = try await ChildProcess.run(BuiltProducts.cli, base + flags)
            #expect(result.status == 64 && result.stderr.contains(message), "\(flags): \(result.status) \(result.stderr)")
        }
    }
}

/// A datagram socket at a path, standing in for systemd's notification socket.
private final class DatagramListener: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard descriptor >= 0, bound == 0 else { throw TestFailure("cannot bind \(path)") }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// Sends one datagram to the socket at `path`.
    static func send(_ message: String, to path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let sent = Array(message.utf8).withUnsafeBytes { data in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, data.baseAddress, data.count, 0, $0, length) }
            }
        }
        guard sent == message.utf8.count else { throw TestFailure("cannot send to \(path)") }
    }

    /// The next message, waiting at most `limit`.
    func receive(within limit: Duration) throws -> String? {
        var wait = timeval(tv_sec: Int(limit.components.seconds), tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }
}
