import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

@Suite("CLI: autoupdate run")
struct RunCommandTests {
    /// `bin/app` of version `version`: prints its version and arguments, then runs `body`.
    private func app(_ version: String, _ body: String = "exit 0") -> [String: UpdateScenario.Content] {
        ["bin/app": .text("#!/bin/sh\necho \"app \(version): $*\"\n\(body)\n", mode: 0o755)]
    }

    @Test("installs the newest version, runs it with its arguments and exits with its code")
    func updateThenRun() async throws {
        let scenario = try UpdateScenario()
        // The app asks for updates from inside, as the seed's check_new: `autoupdate check`, no flags.
        try scenario.publish(app("1.0", "\(BuiltProducts.cli) check\nexit 3"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            let first = try await autoupdate("run", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile, "--", "a", "b c")
            #expect(first.status == 3, "\(first.stderr)")
            #expect(first.stdout == "app 1.0: a b c\nup to date: 1.0\n")
            #expect(first.stderr.contains("updated 0.0.0 → 1.0"), "\(first.stderr)")

            try scenario.publish(app("2.0", "\(BuiltProducts.cli) check"), version: "2.0")
            let never = try await autoupdate("run", "bin/app", "--url", url, "--dir", dir, "--update", "never", "--ca-file", TestPKI.caFile)
            #expect(never.status == 3)
            #expect(never.stdout == "app 1.0: \nupdate available: 1.0 → 2.0\n", "the child's check queued 2.0")

            let declined = try await autoupdate(
                "run", "bin/app", "--url", url, "--dir", dir, "--update", "ask", "--ca-file", TestPKI.caFile)
            #expect(declined.stderr.contains("update 1.0 → 2.0? no terminal to ask on: declined"), "\(declined.stderr)")
            #expect(declined.stdout.hasPrefix("app 1.0"))

            let updated = try await autoupdate("run", "bin/app", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(updated.status == 0, "\(updated.stderr)")
            #expect(updated.stdout == "app 2.0: \nup to date: 2.0\n")
        }
    }

    @Test("a failed check runs the installed version; a missing app is one clear line")
    func failures() async throws {
        let scenario = try UpdateScenario()
        try UpdateScenario.write(app("1.0", "exit 0"), to: scenario.appFolder)
        // Nothing listens on port 1: the check fails, the app still runs.
        let offline = try await autoupdate("run", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path)
        #expect(offline.status == 0)
        #expect(offline.stdout == "app 1.0: \n")
        #expect(offline.stderr.contains("autoupdate: warning: no update:"), "\(offline.stderr)")
        #expect(offline.stderr.contains("running the installed version"))

        let missing = try await autoupdate(
            "run", "bin/nothing", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never")
        #expect(missing.status == 1)
        #expect(missing.stderr == "autoupdate: error: cannot start '\(scenario.appFolder.path)/bin/nothing': no such file\n")

        let outside = try await autoupdate(
            "run", "/bin/sh", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never")
        #expect(outside.status == 1)
        #expect(outside.stderr.contains("is outside the app folder"))

        let badFlag = try await autoupdate("run", "bin/app", "--url", "https://127.0.0.1:1/", "--update", "sometimes")
        #expect(badFlag.status == 64)
        #expect(badFlag.stderr.contains("sometimes"))
    }

    @Test("death by signal N exits 128+N")
    func deathBySignal() async throws {
        let scenario = try UpdateScenario()
        try UpdateScenario.write(app("1.0", "kill -KILL $$"), to: scenario.appFolder)
        let result = try await autoupdate(
            "run", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never")
        #expect(result.status == 137)
    }

    @Test("SIGTERM, SIGINT and SIGHUP sent to autoupdate reach the app; a stubborn app is killed after --grace")
    func signalForwarding() async throws {
        let scenario = try UpdateScenario()
        let fifo = try Fifo(in: scenario.work.url)
        let cooperative = """
            trap 'echo got HUP > "\(fifo.path)"' HUP
            trap 'echo got TERM > "\(fifo.path)"; exit 7' TERM
            trap 'echo got INT > "\(fifo.path)"; exit 8' INT
            echo ready > "\(fifo.path)"
            while :; do sleep 0.05; done
            """
        try UpdateScenario.write(app("1.0", cooperative), to: scenario.appFolder)
        for (signal, expected) in [(SIGTERM, ("got TERM", Int32(7))), (SIGINT, ("got INT", 8))] {
            let process = try LiveProcess(
                BuiltProducts.cli,
                ["run", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never"])
            #expect(try await fifo.nextLine() == "ready")
            process.signal(SIGHUP)
            #expect(try await fifo.nextLine() == "got HUP", "HUP is passed on and the app keeps running")
            process.signal(signal)
            #expect(try await fifo.nextLine() == expected.0)
            #expect(try await process.waitForExit(timeout: TestTiming.bound(.seconds(20))) == expected.1)
        }

        try UpdateScenario.write(
            app("1.0", "trap '' TERM\necho ready > \"\(fifo.path)\"\nwhile :; do sleep 0.05; done"), to: scenario.appFolder)
        let stubborn = try LiveProcess(
            BuiltProducts.cli,
            ["run", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never", "--grace", "0.3"])
        #expect(try await fifo.nextLine() == "ready")
        stubborn.signal(SIGTERM)
        #expect(try await stubborn.waitForExit(timeout: TestTiming.bound(.seconds(20))) == 128 + SIGKILL)
    }

    @Test("the app holds the run lock for its whole life: killing autoupdate run does not let an update swap files under it (D5)")
    func orphanedAppKeepsTheLock() async throws {
        let scenario = try UpdateScenario()
        let fifo = try Fifo(in: scenario.work.url)
        try scenario.publish(app("1.0", "echo \"started $$\" > \"\(fifo.path)\"\nwhile :; do sleep 0.05; done"), version: "1.0")
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            let url = server.baseURL.absoluteString
            let dir = scenario.appFolder.path
            #expect(try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile).status == 0)
            let run = try LiveProcess(BuiltProducts.cli, ["run", "bin/app", "--url", url, "--dir", dir, "--update", "never"])
            let line = try await fifo.nextLine()
            let appPID = try #require(Int32(line.dropFirst("started ".count)))
            defer { kill(-appPID, SIGKILL) }
            run.signal(SIGKILL)  // as the OOM killer would
            _ = try await run.waitForExit()
            #expect(!ProcessTable.isDead(appPID), "the app outlives its launcher")

            try scenario.publish(app("2.0"), version: "2.0")
            let refused = try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("is running"), "\(refused.stderr)")
            #expect(scenario.folder.readVersionDoc().value?.description == "1.0")

            kill(-appPID, SIGKILL)
            #expect(try await ProcessTable.waitUntilEnded(appPID))
            let updated = try await autoupdate("update", "--url", url, "--dir", dir, "--ca-file", TestPKI.caFile)
            #expect(updated.status == 0, "\(updated.stderr)")
        }
    }

    @Test("a server that accepts and stays silent holds the app back no longer than --check-timeout (D9)")
    func silentServer() async throws {
        let scenario = try UpdateScenario()
        try UpdateScenario.write(app("1.0", "exit 0"), to: scenario.appFolder)
        let tcpOnly = try SilentListener()
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            server.inject([.stallBeforeHeaders], at: "/version.txt")
            for url in [server.baseURL.absoluteString, tcpOnly.url] {
                let clock = ContinuousClock()
                let start = clock.now
                let result = try await autoupdate(
                    "run", "bin/app", "--url", url, "--dir", scenario.appFolder.path, "--ca-file", TestPKI.caFile, "--check-timeout", "1")
                let elapsed = clock.now - start
                #expect(result.status == 0)
                #expect(result.stdout == "app 1.0: \n")
                #expect(result.stderr.contains("no answer within 1 s; running the installed version"), "\(result.stderr)")
                // About 1 s alone; a debug build's start on two cores loaded by the whole suite
                // took up to 21 s (with the watch tests' real processes alongside). Without the
                // bound: 78 s (TCP only) to 153 s (silent TLS).
                #expect(elapsed < TestTiming.bound(.seconds(45)), "\(url): \(elapsed)")
            }
        }
    }

    @Test("what the app leaves running outside its group (setsid, a double fork) ends with it")
    func daemonsEndWithTheApp() async throws {
        let scenario = try UpdateScenario()
        let fifo = try Fifo(in: scenario.work.url)
        let body = """
            setsid sh -c 'echo "session $$" > "\(fifo.path)"; exec sleep 1000' &
            ( setsid sh -c 'echo "double $$" > "\(fifo.path)"; exec sleep 1000' & )
            while :; do sleep 0.05; done
            """
        try UpdateScenario.write(app("1.0", body), to: scenario.appFolder)
        let run = try LiveProcess(
            BuiltProducts.cli,
            ["run", "bin/app", "--url", "https://127.0.0.1:1/", "--dir", scenario.appFolder.path, "--update", "never", "--grace", "1"])
        var pids: [Int32] = []
        for _ in 0..<2 {
            let line = try await fifo.nextLine()
            pids.append(try #require(Int32(line.split(separator: " ").last ?? "")))
        }
        defer { pids.forEach { kill($0, SIGKILL) } }
        #expect(pids.allSatisfy { !ProcessTable.isDead($0) })
        run.signal(SIGTERM)
        #expect(try await run.waitForExit(timeout: TestTiming.bound(.seconds(20))) == 128 + SIGTERM)
        for pid in pids {
            #expect(try await ProcessTable.waitUntilEnded(pid, timeout: .seconds(5)), "pid \(pid) outlived the app")
        }
    }

    @Test("on a terminal the app gets the foreground: it reads the terminal and autoupdate gets it back")
    func terminalForeground() async throws {
        let scenario = try UpdateScenario()
        try UpdateScenario.write(app("1.0", "read name\necho \"hello $name\"\nexit 5"), to: scenario.appFolder)
        // `script` (util-linux) runs the command on a fresh pseudo-terminal; a background process
        // group reading it would be stopped by SIGTTIN and never answer.
        let command =
            "\(BuiltProducts.cli) run bin/app --url https://127.0.0.1:1/ --dir \(scenario.appFolder.path) --update never; echo \"exit=$?\"; awk '{ print ($5 == $8) ? \"foreground\" : \"background\" }' /proc/$$/stat"
        let result = try await ChildProcess.run(
            "/bin/sh", ["-c", "echo bob | script -qec \"$0\" /dev/null", command], currentDirectory: scenario.work.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("hello bob"), "\(result.stdout)")
        #expect(result.stdout.contains("exit=5"))
        #expect(result.stdout.contains("foreground"), "the shell has the terminal back")
    }
}
