import ArgumentParser
import Autoupdate
import AutoupdateTestSupport
import Foundation

/// Test-only helper processes: the HTTPS test server as a process (`make demo`, `make bench`),
/// and probes that need a process of their own (peak memory).
@main
struct TestHelperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoupdate-test-helper",
        abstract: "Test-only helpers for autoupdate's tests, demo and benchmarks.",
        subcommands: [Serve.self, SlowDownload.self, SuperviseLoop.self, OrphansBesideASpawn.self]
    )
}

extension TestHelperCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a folder over HTTPS on 127.0.0.1 with the test certificate until SIGTERM or SIGINT.",
            discussion: "Prints the base URL on the first line of stdout once listening."
        )

        @Option(help: "The folder to serve.")
        var root: String

        @Option(help: "The port (0: an ephemeral one).")
        var port: Int = 0

        @Flag(help: "Plain HTTP instead of HTTPS.")
        var plain = false

        @Option(help: "A PEM certificate chain to present instead of the committed test certificate.")
        var certificate: String?

        @Option(help: "The PEM private key of --certificate.")
        var key: String?

        func run() async throws {
            var identity: TestHTTPSServer.Identity? = plain ? nil : .localhost
            if let certificate, let key {
                identity = .files(certificate: certificate, key: key)
            }
            let server = try await TestHTTPSServer.start(root: URL(fileURLWithPath: root), identity: identity, port: port)
            // Unbuffered: whoever started us waits for this line.
            FileHandle.standardOutput.write(Data((server.baseURL.absoluteString + "\n").utf8))
            await Signals.waitForTermination()
            await server.stop()
        }
    }

    struct SlowDownload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download through a deliberately slow consumer; print bytes and memory growth.",
            discussion:
                "Prints `bytes=N peak-growth-kib=K seconds=S`: the body's length, how far the peak RSS rose above the RSS before the download, and the download's own time (from the request to the last byte consumed; process start excluded, as from curl's `%{time_total}`)."
        )

        @Argument(help: "The URL to download.")
        var url: String

        @Option(help: "A PEM file of CA certificates to trust.")
        var caFile: String

        @Option(help: "Microseconds the consumer sleeps per chunk (the deliberate slowness).")
        var delayMicroseconds: Int = 2000

        func run() async throws {
            guard let url = URL(string: url) else { throw ValidationError("bad URL") }
            let downloader = Downloader(configuration: DownloadConfiguration(caFile: caFile))
            let before = MemoryUsage.residentKiB()
            var bytes: Int64 = 0
            let started = ContinuousClock.now
            for try await chunk in downloader.bytes(from: url) {
                bytes += Int64(chunk.bytes.count)
                // `usleep(0)` still sleeps for the timer slack (about 60 µs): none at all for 0.
                if delayMicroseconds > 0 {
                    usleep(UInt32(delayMicroseconds))
                }
            }
            let elapsed = (ContinuousClock.now - started).components
            let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            print("bytes=\(bytes) peak-growth-kib=\(MemoryUsage.peakResidentKiB() - before) seconds=\(seconds)")
        }
    }
}

extension TestHelperCommand {
    struct SuperviseLoop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a child to its end N times through one ProcessSupervisor; print what was left behind.",
            discussion:
                "Prints `runs=N failures=F fds-before=A fds-after=B threads-before=C threads-after=D zombies=Z` (a process of its own, so no other test's descriptors count)."
        )

        @Option(help: "How many runs.")
        var count = 200

        func run() async throws {
            let supervisor = ProcessSupervisor(ProcessConfiguration(executable: "/bin/sh", arguments: ["-c", "exit 7"]))
            // One run first, so that lazily created runtime threads and descriptors are counted before.
            _ = try await supervisor.run()
            let fdsBefore = ProcessTable.openDescriptors
            let threadsBefore = ProcessTable.threads
            var failures = 0
            for _ in 0..<count where try await supervisor.run() != .exited(7) {
                failures += 1
            }
            print(
                "runs=\(count) failures=\(failures) fds-before=\(fdsBefore) fds-after=\(ProcessTable.openDescriptors) threads-before=\(threadsBefore) threads-after=\(ProcessTable.threads) zombies=\(ProcessTable.zombieChildren().count)"
            )
        }
    }
}

extension TestHelperCommand {
    struct OrphansBesideASpawn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "orphans-beside-a-spawn",
            abstract: "Adopt an app's orphan; while it is being ended, spawn another child; print what is left.",
            discussion:
                "Prints `orphan-ended=B newcomer-alive=B` (a process of its own: adopting orphans makes it a child subreaper, whose orphan reaper would take other tests' children)."
        )

        func run() async throws {
            let folder = try TemporaryDirectory(prefix: "orphans")
            let events = try Fifo(in: folder.url)
            var environment = ProcessInfo.processInfo.environment
            environment["FIFO"] = events.path
            // The orphan leaves the app's session and shrugs SIGTERM off (saying so): it is ended
            // only at the grace's end, the window in which the newcomer is spawned. The app exits
            // once the orphan's trap is set (the file says so).
            let orphanScript =
                #"trap 'echo term > "$FIFO"' TERM; echo "orphan $$" > "$FIFO"; touch "$FIFO.trapped"; while :; do sleep 0.05; done"#
            let appScript = #"setsid sh -c "$ORPHAN" & while [ ! -e "$FIFO.trapped" ]; do sleep 0.01; done"#
            environment["ORPHAN"] = orphanScript
            let app = ProcessSupervisor(
                ProcessConfiguration(
                    executable: "/bin/sh", arguments: ["-c", appScript], environment: environment, grace: .seconds(3), adoptsOrphans: true))
            _ = try await app.start()
            let orphan = Int32(try await events.nextLine().split(separator: " ").last ?? "") ?? -1
            guard try await events.nextLine() == "term" else { throw ValidationError("the orphan did not say it got SIGTERM") }
            let newcomer = ProcessSupervisor(
                ProcessConfiguration(
                    executable: "/bin/sh", arguments: ["-c", #"echo "newcomer $$" > "$FIFO"; exec sleep 60"#], environment: environment))
            _ = try await newcomer.start()
            _ = try await events.nextLine()
            // The app's end is reported once its orphans are gone, the newcomer's spawn long before.
            _ = try await app.join()
            print("orphan-ended=\(ProcessTable.isDead(orphan)) newcomer-alive=\(await newcomer.isAlive)")
            _ = await newcomer.terminate()
        }
    }
}
