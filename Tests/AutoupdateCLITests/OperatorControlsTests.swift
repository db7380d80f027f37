import Autoupdate
import AutoupdateTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// What an operator sets for a fleet: a download rate cap, and a proxy (Debian's tinyproxy on
/// loopback, by flag, by the usual variables, with credentials from a file).
@Suite("CLI: --max-rate and --proxy")
struct OperatorControlsTests {
    static func app(bytes: Int) -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho 1.0\n", mode: 0o755), "data.bin": .bytes(Fixtures.randomBytes(count: bytes, seed: 21))]
    }

    @Test("--max-rate caps the download's average rate; values it cannot honour are usage errors")
    func maxRate() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.app(bytes: 400_000), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let clock = ContinuousClock()
            let started = clock.now
            let capped = try await autoupdate(
                "update", "--url", server.baseURL.absoluteString, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile,
                "--max-rate", "200K")
            let elapsed = clock.now - started
            #expect(capped.status == 0, "\(capped.stderr)")
            #expect(scenario.folder.readVersionDoc().value?.description == "1.0")
            // 400 kB at 200 KiB/s is 1.95 s: a cap can only make it slower, so this bound holds on
            // any machine; the rate's accuracy is the benchmark's to measure.
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("--max-rate 200K: 400 kB in \(seconds) s, \(Int(400_000 / seconds)) B/s on average")
            #expect(seconds >= 1.6, "400 kB arrived in \(seconds) s: faster than 200 KiB/s")
        }
        for (value, message) in [("1K", "at least 4K"), ("fast", "give bytes per second"), ("0", "give bytes per second")] {
            let refused = try await autoupdate("update", "--url", "https://127.0.0.1:9/", "--dir", "/tmp", "--max-rate", value)
            #expect(refused.status == 64 && refused.stderr.contains(message), "\(value): \(refused.stderr)")
        }
    }

    /// tinyproxy on a free loopback port, allowing CONNECT to `port`; `credentials` ("user:password") turn on basic auth.
    final class Tinyproxy: Sendable {
        let port: Int
        let process: LiveProcess
        private let lines = NIOLockedValueBox<[String]>([])
        private let reader: Task<Void, Never>

        init(in folder: URL, connectPort: Int, credentials: String? = nil) async throws {
            port = try freeLoopbackPort()
            var conf = """
                User nobody
                Group nogroup
                Port \(port)
                Listen 127.0.0.1
                Timeout 30
                LogLevel Info
                MaxClients 20
                Allow 127.0.0.1
                ConnectPort \(connectPort)

                """
            if let credentials {
                conf += "BasicAuth \(credentials.replacingOccurrences(of: ":", with: " "))\n"
            }
            let path = folder.appending(path: "tinyproxy-\(port).conf").path
            try Data(conf.utf8).write(to: URL(fileURLWithPath: path))
            // It logs on stdout in the foreground (-d): onto stderr, which we read.
            process = try LiveProcess("/bin/sh", ["-c", "exec tinyproxy -d -c '\(path)' 1>&2"])
            let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
            let lines = lines
            reader = Task { [process] in
                for await line in process.stderrLines {
                    lines.withLockedValue { $0.append(line) }
                    if line.contains("Accepting connections") { readyContinuation.yield() }
                }
                readyContinuation.finish()
            }
            try await TestTiming.within(.seconds(20), "tinyproxy to listen") {
                for await _ in ready { return }
                throw TestFailure("tinyproxy ended: \(lines.withLockedValue { $0 })")
            }
        }

        /// The CONNECT requests it has logged so far.
        var connects: [String] {
            lines.withLockedValue { $0 }.filter { $0.contains("Request") && $0.contains("CONNECT 127.0.0.1:") }
        }

        func stop() async {
            // Its graceful end waits for its connections' timeout.
            process.signal(SIGKILL)
            _ = try? await process.waitForExit(timeout: .seconds(10))
            await reader.value
        }
    }

    @Test(
        "--proxy, https_proxy and no_proxy: every request goes through tinyproxy (end-to-end TLS through CONNECT), or around it when told; credentials from --proxy-user-file"
    )
    func proxy() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(Self.app(bytes: 1000), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let serverPort = try #require(server.baseURL.port)
            let open = try await Tinyproxy(in: scenario.work.url, connectPort: serverPort)
            let guarded = try await Tinyproxy(in: scenario.work.url, connectPort: serverPort, credentials: "fleet:s3cret")
            do {
                try await Self.checks(scenario, server, open: open, guarded: guarded)
            } catch {
                await open.stop()
                await guarded.stop()
                throw error
            }
            await open.stop()
            await guarded.stop()
        }
    }

    private static func checks(_ scenario: UpdateScenario, _ server: TestHTTPSServer, open: Tinyproxy, guarded: Tinyproxy) async throws {
        let counter = NIOLockedValueBox(0)
        /// `autoupdate check` into a new empty app folder (a queued result would spare it the network).
        func check(_ extra: [String], environment: [String: String] = [:]) async throws -> ChildProcess.Result {
            // Whatever proxy this machine's environment names is left out.
            var variables = ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
            variables.merge(environment) { $1 }
            let number = counter.withLockedValue { count -> Int in
                count += 1
                return count
            }
            let dir = scenario.work.url.appending(path: "check-\(number)").path
            return try await ChildProcess.run(
                BuiltProducts.cli,
                [
                    "check", "--url", server.baseURL.absoluteString, "--dir", dir, "--ca-file", TestPKI.caFile, "--check-timeout", "5",
                ] + extra,
                environment: variables)
        }
        /// Waits until `proxy` has logged more than `count` CONNECTs (its log comes through a pipe).
        func connects(_ proxy: Tinyproxy, moreThan count: Int) async throws -> Bool {
            try await eventually(within: TestTiming.bound(.seconds(10))) { proxy.connects.count > count ? true : nil } ?? false
        }
        let dead = "http://someone:secret@127.0.0.1:\(try freeLoopbackPort())"
        let proxyURL = "http://127.0.0.1:\(open.port)"

        let flagged = try await check(["--proxy", proxyURL])
        #expect(flagged.status == 0 && flagged.stdout.contains("1.0"), "\(flagged.stdout)\(flagged.stderr)")
        #expect(try await connects(open, moreThan: 0), "no CONNECT reached the proxy")

        // The variables, without the flag: through a live proxy, and refused by a dead one.
        let before = open.connects.count
        let variable = try await check([], environment: ["https_proxy": proxyURL])
        #expect(variable.status == 0, "\(variable.stderr)")
        #expect(try await connects(open, moreThan: before), "https_proxy was not honoured")
        let deadVariable = try await check([], environment: ["https_proxy": dead])
        #expect(deadVariable.status == 1, "https_proxy was not honoured: \(deadVariable.stdout)")
        let bypassed = try await check([], environment: ["https_proxy": dead, "no_proxy": "127.0.0.1"])
        #expect(bypassed.status == 0, "no_proxy was not honoured: \(bypassed.stderr)")

        let refused = try await check(["--proxy", dead])
        #expect(
            refused.status == 1 && refused.stderr.contains("through the proxy http://127.0.0.1:"),
            "a dead proxy is named: \(refused.stderr)")
        #expect(!refused.stderr.contains("secret"), "the proxy's password is never shown")

        // A proxy that wants credentials: refused without, through with the file's.
        let guardedURL = "http://127.0.0.1:\(guarded.port)"
        let anonymous = try await check(["--proxy", guardedURL])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("HTTP 407 (it wants credentials"), "\(anonymous.stderr)")
        let file = scenario.work.url.appending(path: "proxy-user")
        try Data("fleet:s3cret\n".utf8).write(to: file)
        let authenticated = try await check(["--proxy", guardedURL, "--proxy-user-file", file.path])
        #expect(authenticated.status == 0, "\(authenticated.stderr)")
        #expect(try await connects(guarded, moreThan: 0))
        let missing = try await check(["--proxy-user-file", file.path])
        #expect(missing.status == 64 && missing.stderr.contains("needs --proxy"), "\(missing.stderr)")
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (now).
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw TestFailure("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

@Suite("CLI: watch --window and the inhibit file")
struct InstallWindowCommandTests {
    private func line(_ process: LiveProcess, containing text: String) async throws -> String {
        try await TestTiming.within(.seconds(40), "a line with '\(text)'") {
            for await line in process.stderrLines where line.contains(text) { return line }
            throw TestFailure("the watch ended before printing \(text)")
        }
    }

    @Test(
        "the inhibit file stops checks; a required release installs at once; another waits for its window (local time, TZ) and installs when it opens"
    )
    func windows() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        func app(_ version: String) -> [String: UpdateScenario.Content] {
            ["bin/app": .text("#!/bin/sh\n# \(version)\nexec sleep 600\n", mode: 0o755)]
        }
        try scenario.publish(app("1.0"), version: "1.0", release: ReleaseOptions())
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            /// A watch whose local time is `secondOfDay` now (POSIX TZ: local = UTC - offset), with
            /// the window 12:00-12:30; returns it and when, on this clock, 12:00 comes.
            let clock = ContinuousClock()
            func watch(at secondOfDay: Int) throws -> (LiveProcess, opensAt: ContinuousClock.Instant) {
                let now = Date().timeIntervalSince1970
                // TZ offsets are whole seconds: the local time is `secondOfDay` and this fraction.
                let opensAt =
                    clock.now + .seconds(12 * 3600 - secondOfDay) - .milliseconds(Int64((now - now.rounded(.down)) * 1000))
                let offset = ((Int(now) % 86_400 - secondOfDay) % 86_400 + 86_400) % 86_400
                let zone = "WIN+\(offset / 3600):\(offset / 60 % 60):\(offset % 60)"
                let process = try LiveProcess(
                    "/usr/bin/env",
                    [
                        "TZ=\(zone)", BuiltProducts.cli, "watch", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile,
                        "--interval", "3600", "--jitter", "0", "--health-window", "0.2", "--window", "12:00-12:30", "--window",
                        "03:00-03:10",
                    ])
                return (process, opensAt)
            }
            // 06:00: the windows are hours away.
            let (first, _) = try watch(at: 6 * 3600)
            _ = try await line(first, containing: "started 1.0")

            let inhibit = scenario.folder.inhibitFilePath
            #expect(FileManager.default.createFile(atPath: inhibit, contents: Data()))
            first.signal(SIGHUP)
            _ = try await line(first, containing: "updates are inhibited while \(inhibit) exists")
            let status = try await autoupdate("status", "--dir", dir, "--json")
            #expect(status.stdout.contains("\"inhibited\":true"), "\(status.stdout)")
            try FileManager.default.removeItem(atPath: inhibit)

            try scenario.publish(app("2.0"), version: "2.0", release: ReleaseOptions(required: true))
            first.signal(SIGHUP)
            _ = try await line(first, containing: "updated 1.0 → 2.0")

            try scenario.publish(app("3.0"), version: "3.0", release: ReleaseOptions())
            // Once 2.0 is confirmed (its health window over), a check is not deferred by it.
            let confirmed = try await eventually(within: TestTiming.bound(.seconds(10))) {
                FileManager.default.fileExists(atPath: scenario.folder.updateDirectory + "/trial.json") ? nil : true
            }
            #expect(confirmed == true)
            first.signal(SIGHUP)
            let waiting = try await line(first, containing: "3.0 is ready; it installs when the next install window opens")
            // About six hours from 06:00 (less the seconds the steps above took).
            let opensIn = waiting.split(separator: " in ").last.flatMap { Double($0.prefix { $0.isNumber || $0 == "." }) }
            #expect(opensIn.map { (21_000...21_600).contains($0) } == true, "\(waiting)")
            #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
            first.signal(SIGTERM)
            #expect(try await first.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)

            // 11:59:57: 12:00 comes in 3 s; 3.0 installs then, not before.
            let (second, opensAt) = try watch(at: 11 * 3600 + 59 * 60 + 57)
            _ = try await line(second, containing: "started 2.0")
            second.signal(SIGHUP)
            _ = try await line(second, containing: "updated 2.0 → 3.0")
            #expect(clock.now >= opensAt - .milliseconds(50), "3.0 installed before its window opened")
            second.signal(SIGTERM)
            #expect(try await second.waitForExit(timeout: TestTiming.bound(.seconds(30))) == 0)
        }
    }

    @Test("run: with the inhibit file (default or --inhibit-file) nothing is checked and the installed version runs")
    func runInhibited() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        try scenario.publish(["bin/app": .text("#!/bin/sh\necho 1.0\n", mode: 0o755)], version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            try scenario.publish(["bin/app": .text("#!/bin/sh\necho 2.0\n", mode: 0o755)], version: "2.0")
            let custom = scenario.work.url.appending(path: "maintenance").path
            let checksBefore = server.requests(for: "/version.txt").count
            for (file, flag) in [(scenario.folder.inhibitFilePath, [String]()), (custom, ["--inhibit-file", custom])] {
                #expect(FileManager.default.createFile(atPath: file, contents: Data()))
                let ran = try await autoupdate(["run", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile] + flag)
                #expect(ran.stdout == "1.0\n" && ran.stderr.contains("updates are inhibited while \(file) exists"), "\(ran.stderr)")
                try FileManager.default.removeItem(atPath: file)
            }
            #expect(server.requests(for: "/version.txt").count == checksBefore, "an inhibited run asked the server")
            let ran = try await autoupdate("run", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(ran.stdout == "2.0\n", "\(ran.stderr)")
        }
    }

    @Test("--window that is not HH:MM-HH:MM is a usage error naming it")
    func badWindow() async throws {
        let refused = try await autoupdate("watch", "bin/app", "--url", "https://127.0.0.1:9/", "--window", "2-4")
        #expect(refused.status == 64 && refused.stderr.contains("--window: install window '2-4'"), "\(refused.stderr)")
    }
}

@Suite("CLI: --mirror")
struct MirrorTests {
    @Test(
        "mirrors are tried in order: A answers 503, B serves an older signed index, C is good: the update comes from C, and the audit trail names A's and B's failures"
    )
    func failover() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        let key = Minisign.generateKeyPair()
        let pub = scenario.work.url.appending(path: "release.pub").path
        try Data(key.publicKey.base64.utf8).write(to: URL(fileURLWithPath: pub))
        func app(_ version: String) -> [String: UpdateScenario.Content] {
            ["bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755)]
        }
        let stale = scenario.work.url.appending(path: "stale-mirror")
        try scenario.publish(app("1.0"), version: "1.0", signedWith: key, release: ReleaseOptions())
        let primary = try await TestHTTPSServer.start(root: scenario.serverFolder)
        let good = try await TestHTTPSServer.start(root: scenario.serverFolder)
        do {
            let dir = scenario.appFolder.path
            func update(_ url: String, _ mirrors: [String] = []) async throws -> ChildProcess.Result {
                try await autoupdate(
                    ["update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--public-key", pub, "--check-timeout", "10"]
                        + mirrors.flatMap { ["--mirror", $0] })
            }
            #expect(try await update(primary.baseURL.absoluteString).status == 0)
            // B keeps 1.0's signed index; 2.0 is then seen from the primary (its serial is remembered).
            try await shell("cp -a '\(scenario.serverFolder.path)' '\(stale.path)'", in: scenario.work.url)
            try scenario.publish(app("2.0"), version: "2.0", signedWith: key, release: ReleaseOptions())
            #expect(try await update(primary.baseURL.absoluteString).status == 0)
            try scenario.publish(app("3.0"), version: "3.0", signedWith: key, release: ReleaseOptions())

            let staleServer = try await TestHTTPSServer.start(root: stale)
            for path in ["/release.json", "/version.txt", "/release.json.minisig", "/version.txt.minisig"] {
                primary.inject([.status(503)], at: path)
            }
            let updated = try await update(
                primary.baseURL.absoluteString, [staleServer.baseURL.absoluteString, good.baseURL.absoluteString])
            await staleServer.stop()
            #expect(updated.status == 0 && updated.stdout.contains("updated 2.0 → 3.0"), "\(updated.stdout)\(updated.stderr)")
            #expect(scenario.folder.readVersionDoc().value?.description == "3.0")
            let audit = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
            let failures = audit.split(separator: "\n").filter { $0.contains(#""event":"source""#) }
            #expect(failures.count == 2, "\(failures)")
            #expect(failures.first?.contains("503") == true, "\(failures)")
            #expect(failures.last?.contains("older than serial") == true, "\(failures)")

            // Every source failing: one error naming each.
            let goodURL = good.baseURL.absoluteString
            await good.stop()
            let none = try await update(primary.baseURL.absoluteString, [goodURL])
            #expect(none.status == 1 && none.stderr.contains("every update source failed"), "\(none.stderr)")
            #expect(none.stderr.contains(primary.baseURL.absoluteString) && none.stderr.contains(goodURL), "\(none.stderr)")
        } catch {
            await primary.stop()
            await good.stop()
            throw error
        }
        await primary.stop()
    }
}

@Suite("CLI: --from DIR (an offline source)")
struct OfflineSourceTests {
    @Test(
        "--from a folder laid out like the server: signed releases install with no network (also differentially), a tampered archive and an older index are refused, a folder without --public-key is refused"
    )
    func fromFolder() async throws {
        let scenario = try UpdateScenario(inMemory: true)
        let key = Minisign.generateKeyPair()
        let pub = scenario.work.url.appending(path: "release.pub").path
        try Data(key.publicKey.base64.utf8).write(to: URL(fileURLWithPath: pub))
        func app(_ version: String) -> [String: UpdateScenario.Content] {
            [
                "bin/app": .text("#!/bin/sh\necho \(version)\n", mode: 0o755),
                "share/manual.bin": .bytes(Fixtures.randomBytes(count: 200_000, seed: 7)),
            ]
        }
        let stick = scenario.serverFolder.path
        let dir = scenario.appFolder.path
        func update(_ extra: [String] = ["--public-key", pub]) async throws -> ChildProcess.Result {
            try await autoupdate(["update", "--from", stick, "--dir", dir] + extra)
        }
        try scenario.publish(app("1.0"), version: "1.0", signedWith: key, release: ReleaseOptions())
        let first = try await update()
        #expect(first.status == 0 && first.stdout.contains("updated 0.0.0 → 1.0"), "\(first.stdout)\(first.stderr)")
        #expect(try scenario.appFiles() == UpdateScenario.snapshot(app("1.0")))
        let oldIndex = scenario.work.url.appending(path: "old-index")
        try await shell("mkdir '\(oldIndex.path)' && cp '\(stick)'/release.json* '\(oldIndex.path)'/", in: scenario.work.url)

        // 2.0 changes only bin/app: the manual stays, the update reads only the changed member.
        try scenario.publish(app("2.0"), version: "2.0", signedWith: key, release: ReleaseOptions())
        let second = try await update()
        #expect(second.status == 0 && second.stdout.contains("updated 1.0 → 2.0"), "\(second.stdout)\(second.stderr)")
        #expect(try scenario.appFiles() == UpdateScenario.snapshot(app("2.0")))
        let audit = try String(contentsOfFile: scenario.folder.auditLogPath, encoding: .utf8)
        #expect(audit.contains(#""decision":"delta-staged""#), "the second update read only what changed")

        let unsigned = try await update([])
        #expect(unsigned.status != 0 && unsigned.stderr.contains("a public key is required"), "\(unsigned.stderr)")
        let withURL = try await autoupdate("update", "--from", stick, "--url", "https://127.0.0.1:9/", "--dir", dir)
        #expect(withURL.status == 64 && withURL.stderr.contains("--from replaces the server"), "\(withURL.stderr)")

        // A tampered archive on the stick: refused, 2.0 stays.
        try scenario.publish(app("3.0"), version: "3.0", signedWith: key, release: ReleaseOptions())
        let archive = scenario.serverFolder.appending(path: "releases/3.0/project.zip")
        var bytes = try [UInt8](Data(contentsOf: archive))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: archive)
        let tampered = try await update(["--public-key", pub, "--differential", "never"])
        #expect(tampered.status == 1, "\(tampered.stdout)\(tampered.stderr)")
        #expect(scenario.folder.readVersionDoc().value?.description == "2.0")

        // An older signed index put back on the stick: refused as a replay.
        try await shell("cp '\(oldIndex.path)'/release.json* '\(stick)'/", in: scenario.work.url)
        let replayed = try await update()
        #expect(replayed.status == 1 && replayed.stderr.contains("older than serial"), "\(replayed.stderr)")
        #expect(scenario.folder.readVersionDoc().value?.description == "2.0")
    }
}
