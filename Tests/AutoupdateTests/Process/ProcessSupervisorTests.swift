import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// A folder with shell scripts and a FIFO through which they report.
struct ScriptBench {
    let folder: TemporaryDirectory
    let events: Fifo

    init() throws {
        folder = try TemporaryDirectory(prefix: "supervisor")
        events = try Fifo(in: folder.url)
    }

    /// Writes an executable `#!/bin/sh` script; `$FIFO` in it names the events pipe.
    func script(_ name: String, _ body: String) throws -> String {
        let path = folder.url.appending(path: name).path
        try Data("#!/bin/sh\nFIFO='\(events.path)'\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }

    func supervisor(_ executable: String, _ arguments: [String] = [], grace: Duration = .seconds(5)) -> ProcessSupervisor {
        ProcessSupervisor(ProcessConfiguration(executable: executable, arguments: arguments, workingDirectory: folder.path, grace: grace))
    }
}

@Suite("ProcessSupervisor: real children")
struct ProcessSupervisorTests {
    @Test(
        "exit codes and deaths by signal are reported as they happened",
        arguments: [
            ("exit 0", TerminationStatus.exited(0), Int32(0)), ("exit 3", .exited(3), 3), ("exit 255", .exited(255), 255),
            ("kill -KILL $$", .signaled(9), -9), ("kill -TERM $$", .signaled(15), -15), ("kill -SEGV $$", .signaled(11), -11),
        ])
    func exitStatuses(body: String, expected: TerminationStatus, seedCode: Int32) async throws {
        let bench = try ScriptBench()
        let supervisor = bench.supervisor(try bench.script("app.sh", body))
        let status = try await supervisor.run()
        #expect(status == expected)
        #expect(status.seedExitCode == seedCode, "the seed's exitcode: −N after signal N")
        #expect(status.shellExitCode == (seedCode < 0 ? 128 - seedCode : seedCode))
        #expect(await supervisor.exitStatus == expected)
        #expect(await !supervisor.isAlive)
        #expect(await !supervisor.codeRunning)
    }

    @Test("arguments, environment and working directory reach the child as given")
    func argumentsAndEnvironment() async throws {
        let bench = try ScriptBench()
        let path = try bench.script("args.sh", #"printf '%s\n' "$#" "$@" "$GREETING" "$(pwd)" > "$FIFO""#)
        let supervisor = ProcessSupervisor(
            ProcessConfiguration(
                executable: path, arguments: ["one", "two words", "", "ünï\"code"],
                environment: ["GREETING": "hello there", "PATH": "/usr/bin:/bin"],
                workingDirectory: bench.folder.path))
        #expect(try await supervisor.run() == .exited(0))
        var lines: [String] = []
        for _ in 0..<7 { lines.append(try await bench.events.nextLine()) }
        #expect(lines == ["4", "one", "two words", "", "ünï\"code", "hello there", bench.folder.path])
    }

    @Test("a failed exec is a clear error naming the file, not an exit code")
    func failedExec() async throws {
        let bench = try ScriptBench()
        let missing = bench.folder.url.appending(path: "missing").path
        let notExecutable = bench.folder.url.appending(path: "data.txt").path
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: notExecutable))
        let noShebang = bench.folder.url.appending(path: "garbage").path
        try Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2, 3]).write(to: URL(fileURLWithPath: noShebang))
        chmod(noShebang, 0o755)
        let badInterpreter = try bench.script("broken.sh", "")
        try Data("#!/nonexistent/interpreter\n".utf8).write(to: URL(fileURLWithPath: badInterpreter))
        for (path, expected) in [
            (missing, "no such file"), (notExecutable, "it is not executable"), (noShebang, "not an executable for this machine"),
            (badInterpreter, "interpreter is missing"), (bench.folder.path, "it is a folder"),
        ] {
            let supervisor = bench.supervisor(path)
            let error = await #expect(throws: AutoupdateError.self) { try await supervisor.start() }
            #expect(error?.code == .spawn)
            #expect(error?.message.contains(path) == true && error?.message.contains(expected) == true, "\(error?.message ?? "")")
            #expect(await !supervisor.isAlive)
            #expect(await supervisor.pid == nil)
        }
    }

    @Test("a child that ignores SIGTERM is killed after the grace period; a cooperative one ends at once")
    func terminate() async throws {
        let bench = try ScriptBench()
        let grace = Duration.milliseconds(400)
        let stubborn = bench.supervisor(
            try bench.script("stubborn.sh", "trap '' TERM\necho ready > \"$FIFO\"\nwhile :; do sleep 1; done"), grace: grace)
        try await stubborn.start()
        #expect(try await bench.events.nextLine() == "ready")
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await stubborn.terminate())
        let stubbornTime = clock.now - start
        #expect(await stubborn.exitStatus == .signaled(SIGKILL))
        #expect(stubbornTime >= grace)
        // Generous: the whole suite runs beside it on two cores; a child never killed would take forever.
        #expect(stubbornTime < grace + TestTiming.bound(.seconds(40)), "killed, not left running")

        let cooperative = bench.supervisor(try bench.script("cooperative.sh", "echo ready > \"$FIFO\"\nexec sleep 60"), grace: .seconds(30))
        try await cooperative.start()
        #expect(try await bench.events.nextLine() == "ready")
        let cooperativeStart = clock.now
        #expect(await cooperative.terminate())
        let cooperativeTime = clock.now - cooperativeStart
        #expect(await cooperative.exitStatus == .signaled(SIGTERM))
        #expect(cooperativeTime < TestTiming.bound(.seconds(25)), "under the 30 s grace: it ended on SIGTERM")
        print("terminate: cooperative child gone after \(cooperativeTime), stubborn after \(stubbornTime) (grace \(grace))")
        #expect(await !cooperative.terminate(), "nothing left to terminate")
    }

    @Test("terminating a child ends its whole process group, grandchildren included")
    func grandchildren() async throws {
        let bench = try ScriptBench()
        let supervisor = bench.supervisor(try bench.script("parent.sh", "sleep 60 &\necho \"$!\" > \"$FIFO\"\nwait"), grace: .seconds(2))
        try await supervisor.start()
        let grandchild = try #require(Int32(try await bench.events.nextLine()))
        #expect(!ProcessTable.isDead(grandchild))
        #expect(await supervisor.terminate())
        #expect(ProcessTable.isDead(grandchild))
    }

    @Test("what a child leaves running in its group when it exits is ended too")
    func stragglers() async throws {
        let bench = try ScriptBench()
        // The straggler ignores SIGTERM, so it takes the grace period and a SIGKILL.
        let supervisor = bench.supervisor(
            try bench.script("leaver.sh", "(trap '' TERM; exec sleep 60) &\necho \"$!\" > \"$FIFO\"\nexit 4"), grace: .milliseconds(300))
        try await supervisor.start()
        let straggler = try #require(Int32(try await bench.events.nextLine()))
        #expect(try await supervisor.join() == .exited(4))
        #expect(
            ProcessTable.isDead(straggler),
            "join returns once the group is gone; state \(String(describing: ProcessTable.state(of: straggler))) \((try? String(contentsOfFile: "/proc/\(straggler)/stat", encoding: .utf8)) ?? "")"
        )
    }

    @Test("join with a timeout returns nil while the child runs, then its status")
    func joinTimeout() async throws {
        let bench = try ScriptBench()
        let supervisor = bench.supervisor(try bench.script("wait.sh", "echo ready > \"$FIFO\"\nread line < \"$FIFO.go\"\nexit 5"))
        #expect(mkfifo(bench.events.path + ".go", 0o600) == 0)
        try await supervisor.start()
        #expect(try await bench.events.nextLine() == "ready")
        #expect(try await supervisor.join(timeout: .milliseconds(100)) == nil)
        #expect(await supervisor.isAlive)
        #expect(await supervisor.codeRunning)
        try Data("go\n".utf8).write(to: URL(fileURLWithPath: bench.events.path + ".go"))
        #expect(try await supervisor.join(timeout: TestTiming.bound(.seconds(10))) == .exited(5))
        #expect(await !supervisor.isAlive)
    }

    @Test("cancelling the task that runs the child ends it; nothing is left")
    func cancellation() async throws {
        let bench = try ScriptBench()
        let supervisor = bench.supervisor(
            try bench.script("sleeper.sh", "sleep 60 &\necho \"$$ $!\" > \"$FIFO\"\nwait"), grace: .seconds(2))
        let running = Task { try await supervisor.run() }
        let pids = try await bench.events.nextLine().split(separator: " ").compactMap { Int32($0) }
        #expect(pids.count == 2)
        running.cancel()
        await #expect(throws: CancellationError.self) { try await running.value }
        #expect(pids.allSatisfy(ProcessTable.isDead))
        #expect(await supervisor.exitStatus == .signaled(SIGTERM))

        // Cancelling a join ends the child as well.
        try await supervisor.start()
        _ = try await bench.events.nextLine()
        let joining = Task { try await supervisor.join() }
        joining.cancel()
        await #expect(throws: CancellationError.self) { try await joining.value }
        #expect(await !supervisor.isAlive)
    }

    @Test("an app's orphans are ended with it; a child spawned meanwhile is not taken for one")
    func newcomerIsNotAnOrphan() async throws {
        // A process of its own: adopting orphans makes it a child subreaper.
        let result = try await ChildProcess.run(
            BuiltProducts.directory.appending(path: "AutoupdateTestHelper").path, ["orphans-beside-a-spawn"], timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("orphan-ended=true"), "\(result.stdout)")
        #expect(result.stdout.contains("newcomer-alive=true"), "\(result.stdout)")
    }

    @Test("start while running is refused; a start after the end runs a fresh process")
    func runTwice() async throws {
        let bench = try ScriptBench()
        let supervisor = bench.supervisor(try bench.script("once.sh", "echo \"$$\" > \"$FIFO\"\nread line < \"$FIFO.go\""))
        #expect(mkfifo(bench.events.path + ".go", 0o600) == 0)
        let first = try await supervisor.start()
        #expect(try await bench.events.nextLine() == String(first))
        let error = await #expect(throws: AutoupdateError.self) { try await supervisor.start() }
        #expect(error?.code == .processRunning)
        try Data("go\n".utf8).write(to: URL(fileURLWithPath: bench.events.path + ".go"))
        #expect(try await supervisor.join() == .exited(0))
        let second = try await supervisor.start()
        #expect(second != first)
        #expect(try await bench.events.nextLine() == String(second))
        #expect(await supervisor.terminate())
    }

    @Test("signals the parent ignores or blocks are at their defaults in the child")
    func signalDefaults() async throws {
        let bench = try ScriptBench()
        // The test runner may ignore SIGPIPE and SIGINT; the child must not inherit that.
        let previous = signal(SIGINT, SIG_IGN)
        defer { signal(SIGINT, previous) }
        let supervisor = bench.supervisor(try bench.script("int.sh", "echo ready > \"$FIFO\"\nexec sleep 60"))
        try await supervisor.start()
        #expect(try await bench.events.nextLine() == "ready")
        #expect(await supervisor.send(SIGINT))
        #expect(try await supervisor.join(timeout: TestTiming.bound(.seconds(10))) == .signaled(SIGINT))
    }

    @Test("200 runs leave no descriptor, thread or zombie behind")
    func noLeaks() async throws {
        let result = try await ChildProcess.run(
            BuiltProducts.directory.appending(path: "AutoupdateTestHelper").path, ["supervise-loop", "--count", "200"])
        #expect(result.status == 0, "\(result.stderr)")
        let fields = Dictionary(
            uniqueKeysWithValues: result.stdout.split(whereSeparator: \.isWhitespace).compactMap { field -> (String, Int)? in
                let parts = field.split(separator: "=")
                return parts.count == 2 ? (String(parts[0]), Int(parts[1]) ?? -1) : nil
            })
        #expect(fields["runs"] == 200)
        #expect(fields["failures"] == 0)
        #expect(fields["fds-before"] == fields["fds-after"], "\(result.stdout)")
        let threadsBefore = try #require(fields["threads-before"])
        let threadsAfter = try #require(fields["threads-after"])
        // A leak would be one per run (200). Under load the concurrency pool and dispatch may each
        // add a thread per core, and the last run's reaper may be on its way out.
        #expect(threadsAfter <= threadsBefore + 2 * ProcessInfo.processInfo.activeProcessorCount + 1, "\(result.stdout)")
        #expect(fields["zombies"] == 0)
    }
}
