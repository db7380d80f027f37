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
}
