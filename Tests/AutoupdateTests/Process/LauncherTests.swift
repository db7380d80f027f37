import Autoupdate
import AutoupdateTestSupport
import Foundation
import Logging
import Testing

/// An app whose `bin/app` reports its version, arguments and launcher variables through the FIFO
/// named in its kwargs, then waits for a line on `<fifo>.go` when started with `wait` as its first argument.
private func appTree(version: String, exitCode: Int = 0) -> [String: UpdateScenario.Content] {
    let script = """
        #!/bin/sh
        FIFO=$(printf '%s' "$AUTOUPDATE_KWARGS" | sed 's/.*"fifo":"\\([^"]*\\)".*/\\1/')
        env | grep '^AUTOUPDATE_' | sort > "$AUTOUPDATE_DIR/env-\(version).txt"
        echo "\(version) $$ $*" > "$FIFO"
        if [ "$1" = wait ]; then read line < "$FIFO.go"; fi
        exit \(exitCode)
        """
    return ["bin/app": .text(script, mode: 0o755), "share/data.txt": .text("data of \(version)\n")]
}

private func makeLauncher(
    _ scenario: UpdateScenario, _ server: TestHTTPSServer, _ fifo: Fifo, args: [String] = [], grace: Duration = .seconds(5)
) throws -> Launcher {
    try Launcher(
        filepath: "bin/app", url: server.baseURL.absoluteString, logLevel: .info, args: args, kwargs: ["mode": "fast", "fifo": fifo.path],
        folder: scenario.folder, download: .forTests(maxRetries: 1, caFile: TestPKI.caFile), grace: grace)
}

@Suite("Launcher: the seed's API against the HTTPS test server")
struct LauncherTests {
    @Test("the seed's quick start: check, update, run in the foreground and the background")
    func quickStart() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(appTree(version: "1.0", exitCode: 3), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let fifo = try Fifo(in: scenario.work.url)
            let launcher = try makeLauncher(scenario, server, fifo, args: ["--flag", "two words"])
            #expect(!launcher.versionDocValidator(), "nothing installed yet")
            #expect(launcher.versionLogValidator())
            #expect(try await launcher.checkNew())
            #expect(try await launcher.updateCode())
            #expect(launcher.versionDocValidator())
            #expect(try await !launcher.checkNew())
            #expect(try await !launcher.updateCode(), "nothing newer")

            #expect(await launcher.processPID == nil)
            #expect(await launcher.processExitcode == nil)
            #expect(try await launcher.run() == 3)
            let line = try await fifo.nextLine()
            let pid = try #require(await launcher.processPID)
            #expect(line == "1.0 \(pid) --flag two words")
            #expect(await launcher.processExitcode == 3)
            #expect(await !launcher.processIsAlive)

            // The seed's variables, as the app saw them.
            let environment = try String(contentsOf: scenario.appFolder.appending(path: "env-1.0.txt"), encoding: .utf8)
            let variables = Dictionary(
                uniqueKeysWithValues: environment.split(separator: "\n").map { line in
                    let parts = line.split(separator: "=", maxSplits: 1)
                    return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
                })
            #expect(variables["AUTOUPDATE_FILEPATH"] == scenario.appFolder.path + "/bin/app")
            #expect(variables["AUTOUPDATE_URL"] == server.baseURL.absoluteString)
            #expect(variables["AUTOUPDATE_NEWFILES"] == "project.zip")
            #expect(variables["AUTOUPDATE_PID"] == String(getpid()))
            #expect(variables["AUTOUPDATE_DIR"] == scenario.appFolder.path)
            #expect(variables["AUTOUPDATE_LOG_LEVEL"] == "info")
            #expect(variables["AUTOUPDATE_KWARGS"] == #"{"fifo":"\#(fifo.path)","mode":"fast"}"#)
            let context = try #require(try UpdateContext.fromEnvironment(variables))
            #expect(context.folder == scenario.folder)
            #expect(context.kwargs == ["mode": "fast", "fifo": fifo.path])
            #expect(context.parentPID == getpid())
            #expect(try await !context.checkNew(), "the child's check_new: up to date")
            try scenario.publish(appTree(version: "1.1"), version: "1.1")
            #expect(try await context.checkNew())
            #expect(context.queuedVersion() == (try Version("1.1")))

            // Background: returns once started; the seed's properties follow the child.
            #expect(try await launcher.run(background: true) == nil)
            _ = try await fifo.nextLine()
            let pidNow = await launcher.processPID
            #expect(pidNow != pid, "a fresh process")
            #expect(try await launcher.processJoin(timeout: TestTiming.bound(.seconds(10))) == 3)
            #expect(await !launcher.processTerminate(), "already gone")
        }
    }

    @Test("while the app runs: run again is refused, updates wait; after the end both work")
    func runningApp() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(appTree(version: "1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let fifo = try Fifo(in: scenario.work.url)
            #expect(mkfifo(fifo.path + ".go", 0o600) == 0)
            let launcher = try makeLauncher(scenario, server, fifo, args: ["wait"], grace: .seconds(2))
            #expect(try await launcher.updateCode())
            try await launcher.run(background: true)
            let firstLine = try await fifo.nextLine()
            #expect(firstLine.hasPrefix("1.0 "))
            #expect(await launcher.processIsAlive)
            #expect(await launcher.processCodeRunning)

            let error = await #expect(throws: AutoupdateError.self) { try await launcher.run(background: true) }
            #expect(error?.code == .processRunning)

            try scenario.publish(appTree(version: "2.0"), version: "2.0")
            #expect(try await launcher.checkNew())
            #expect(try await !launcher.updateCode(), "refused while the app runs")
            // Another updater (another process, the CLI) is refused by the folder's lock too.
            let other = try makeUpdater(scenario, server)
            let refused = await #expect(throws: AutoupdateError.self) { try await other.update() }
            #expect(refused?.code == .processRunning)
            #expect(scenario.folder.readVersionDoc().value == (try Version("1.0")))

            #expect(await launcher.processTerminate())
            #expect(await launcher.processExitcode == -15)
            #expect(await !launcher.processIsAlive)
            #expect(try await launcher.updateCode())
            #expect(scenario.folder.readVersionDoc().value == (try Version("2.0")))

            let oldPID = try #require(await launcher.processPID)
            try await launcher.run(background: true)
            let secondLine = try await fifo.nextLine()
            #expect(secondLine.hasPrefix("2.0 "), "a fresh process of the new version")
            #expect(await launcher.processPID != oldPID)
            try Data("go\n".utf8).write(to: URL(fileURLWithPath: fifo.path + ".go"))
            #expect(try await launcher.processJoin() == 0)
        }
    }

    @Test("events report the update and the process")
    func events() async throws {
        let scenario = try UpdateScenario()
        try scenario.publish(appTree(version: "1.0"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let fifo = try Fifo(in: scenario.work.url)
            let launcher = try makeLauncher(scenario, server, fifo)
            #expect(try await launcher.updateCode())
            #expect(try await launcher.run() == 0)
            _ = try await fifo.nextLine()
            let pid = try #require(await launcher.processPID)
            var names: [String] = []
            for await event in launcher.events {
                switch event {
                case .update(.installed(let version)): names.append("installed \(version)")
                case .update: break
                case .started(let started): names.append("started \(started == pid)")
                case .exited(let exited, let status): names.append("exited \(exited == pid) \(status)")
                }
                if names.last?.hasPrefix("exited") == true { break }
            }
            #expect(names == ["installed 1.0", "started true", "exited true exited with code 0"])
        }
    }

    @Test("a filepath outside the app folder, a bad URL or archive name is refused at once")
    func invalidArguments() throws {
        let folder = AppFolder(path: "/opt/app")
        for (filepath, url, archive) in [
            ("../etc/passwd", "https://example.com/", "project.zip"), ("/usr/bin/env", "https://example.com/", "project.zip"),
            ("bin/app", "ftp://example.com/", "project.zip"), ("bin/app", "https://example.com/", "project.rar"),
        ] {
            #expect(throws: AutoupdateError.self) {
                try Launcher(filepath: filepath, url: url, newfiles: archive, folder: folder)
            }
        }
        let launcher = try Launcher(filepath: "/opt/app/bin/../bin/app", url: "http://example.com/app/?q=1", folder: folder)
        #expect(launcher.filepath == "/opt/app/bin/app")
        #expect(launcher.url.description == "https://example.com/app/")
        #expect(
            [launcher.versionDoc, launcher.fileList, launcher.versionCheckLog, launcher.updateDir, launcher.queueUpdate]
                == ["version.txt", "filelist.txt", "version_check.log", ".pyautodownloads", ".queue"])
    }

    @Test("UpdateContext reads the launcher's variables and names a malformed one")
    func updateContext() throws {
        #expect(try UpdateContext.fromEnvironment([:]) == nil, "not launched")
        let good = [
            "AUTOUPDATE_FILEPATH": "/a/bin/app", "AUTOUPDATE_URL": "https://example.com/", "AUTOUPDATE_PID": "42",
            "AUTOUPDATE_DIR": "/a", "AUTOUPDATE_KWARGS": #"{"k":"v"}"#,
        ]
        let context = try #require(try UpdateContext.fromEnvironment(good))
        #expect(context.logLevel == .warning)
        #expect(context.newfiles == .default)
        #expect(try UpdateContext.fromEnvironment(context.environment) == context)
        for (name, value) in [
            ("AUTOUPDATE_PID", "x"), ("AUTOUPDATE_KWARGS", "[1]"), ("AUTOUPDATE_LOG_LEVEL", "loud"), ("AUTOUPDATE_URL", "ftp://x/"),
            ("AUTOUPDATE_NEWFILES", "a.rar"),
        ] {
            var bad = good
            bad[name] = value
            let error = #expect(throws: AutoupdateError.self) { try UpdateContext.fromEnvironment(bad) }
            #expect(error?.message.contains(name) == true, "\(error?.message ?? "")")
        }
    }
}
