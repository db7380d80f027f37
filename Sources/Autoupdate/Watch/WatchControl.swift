#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How another process reaches the `watch` that runs an app folder: the watch holds a lock on
/// `.pyautodownloads/watch.pid` for as long as it runs (so a second watch of the same folder is
/// refused, and a dead watch never leaves a stale pid), and writes its pid there once it takes
/// requests. A rollback is asked for by writing `rollback-request.json` (`{"to": "2.0"}`, or an
/// empty file for the default) and sending the watch SIGUSR1; the watch takes the file, does it,
/// and answers in `rollback-result.json`. `autoupdate rollback` does all of it.
enum WatchControl {
    static let pidFile = "watch.pid"
    static let requestFile = "rollback-request.json"
    static let resultFile = "rollback-result.json"
    /// Written after the pid when the watch rolls back on SIGUSR1.
    static let listensMark = "SIGUSR1"

    /// A rollback asked of a running watch.
    struct Request: Codable, Equatable, Sendable {
        /// The kept version to put back; `nil` for the default (the highest kept one below the installed one).
        var to: String?
        /// The asker's token, repeated in the answer.
        var id: String?
    }

    /// A running watch's answer to a ``Request``.
    struct Outcome: Codable, Equatable, Sendable {
        var id: String?
        var rolledBack: Bool
        var from: String?
        var to: String?
        var error: String?
    }
}

extension AppFolder {
    var watchPIDPath: String { updateDirectory + "/" + WatchControl.pidFile }

    /// While this file exists, `watch` and `run` neither check nor install
    /// (`.pyautodownloads/inhibit`; `--inhibit-file` names another).
    public var inhibitFilePath: String { updateDirectory + "/inhibit" }
    var rollbackRequestPath: String { updateDirectory + "/" + WatchControl.requestFile }
    var rollbackResultPath: String { updateDirectory + "/" + WatchControl.resultFile }

    /// Taken by a watch for as long as it runs; its pid is written in once it takes requests
    /// (`listening`: on SIGUSR1).
    ///
    /// - Throws: ``AutoupdateError`` `.processRunning` when another watch runs this folder.
    func lockForWatch(listening: Bool) throws -> FileLock {
        try FileManager.default.createDirectory(atPath: updateDirectory, withIntermediateDirectories: true)
        guard let lock = try FileLock.acquire(watchPIDPath, exclusive: true) else {
            let other = runningWatch().map { " (pid \($0.pid))" } ?? ""
            throw AutoupdateError(.processRunning, "another watch runs the app in \(quoted(path))\(other); one watch per folder")
        }
        lock.replaceContent(with: "\(getpid())\(listening ? " " + WatchControl.listensMark : "")\n")
        return lock
    }

    /// The watch that runs this folder's app, if one does: its pid, and whether it takes
    /// rollback requests (SIGUSR1). `nil` when none runs (its lock is free).
    public func runningWatch() -> (pid: Int32, takesRequests: Bool)? {
        guard FileManager.default.fileExists(atPath: watchPIDPath) else { return nil }
        // A shared lock is refused exactly while a watch holds its exclusive one.
        do {
            guard try FileLock.acquire(watchPIDPath, exclusive: false, readOnly: true) == nil else { return nil }
        } catch {
            return nil
        }
        let text = String(decoding: FileManager.default.contents(atPath: watchPIDPath) ?? Data(), as: UTF8.self)
        let words = text.split(whereSeparator: \.isWhitespace)
        guard let pid = words.first.flatMap({ Int32($0) }), pid > 0 else { return nil }
        return (pid, words.dropFirst().contains { $0 == WatchControl.listensMark })
    }

    /// Takes (reads and removes) a rollback request: `nil` when there is none.
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` naming the file when it is not a request
    ///   (it is removed all the same).
    func takeRollbackRequest() throws -> WatchControl.Request? {
        guard let data = FileManager.default.contents(atPath: rollbackRequestPath) else { return nil }
        try? removeIfPresent(rollbackRequestPath)
        if data.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) {
            return WatchControl.Request()
        }
        guard data.count <= 4096, let request = try? JSONDecoder().decode(WatchControl.Request.self, from: data) else {
            throw AutoupdateError(
                .invalidArgument,
                "\(quoted(rollbackRequestPath)) is not a rollback request: write {\"to\": \"VERSION\"}, or nothing for the default")
        }
        return request
    }

    func writeRollbackRequest(_ request: WatchControl.Request) throws {
        try AtomicFile.write(Array(try JSONEncoder().encode(request)), to: rollbackRequestPath)
    }

    func writeRollbackOutcome(_ outcome: WatchControl.Outcome) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(outcome)), to: rollbackResultPath)
    }

    func readRollbackOutcome() -> WatchControl.Outcome? {
        FileManager.default.contents(atPath: rollbackResultPath).flatMap { try? JSONDecoder().decode(WatchControl.Outcome.self, from: $0) }
    }
}

extension Updater {
    /// Asks the watch that runs this folder to put a kept version back (see ``WatchControl``),
    /// and waits for its answer.
    func askWatchToRollBack(pid: Int32, to version: Version?, within timeout: Duration) async throws -> (from: Version, to: Version) {
        // One request at a time: the file is the queue.
        guard let requestLock = try FileLock.acquire(folder.rollbackRequestPath + ".lock", exclusive: true) else {
            throw AutoupdateError(.locked, "another rollback of \(quoted(folder.path)) is being asked for; try again once it has ended")
        }
        defer { withExtendedLifetime(requestLock) {} }
        let id = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        try folder.writeRollbackRequest(WatchControl.Request(to: version?.description, id: id))
        logger.info("asking the watch to roll back", metadata: ["process.pid": "\(pid)"])
        let deadline = ContinuousClock.now + timeout
        var nextSignal = ContinuousClock.now
        while ContinuousClock.now < deadline {
            if let outcome = folder.readRollbackOutcome(), outcome.id == id {
                guard outcome.rolledBack, let from = outcome.from.flatMap({ try? Version($0) }),
                    let to = outcome.to.flatMap({ try? Version($0) })
                else {
                    throw AutoupdateError(.invalidArgument, outcome.error ?? "the watch (pid \(pid)) did not roll back")
                }
                return (from, to)
            }
            let pending = FileManager.default.fileExists(atPath: folder.rollbackRequestPath)
            guard folder.runningWatch()?.pid == pid else {
                // The watch ended. Untaken, the request is withdrawn and done here (refused if the
                // app still runs); taken, its answer may still come (the watch writes it before it
                // stops), else the caller learns how things stand.
                if pending {
                    try? folder.removeIfPresent(folder.rollbackRequestPath)
                    return try await rollBackHere(toKept: version)
                }
                if let outcome = folder.readRollbackOutcome(), outcome.id == id { continue }
                throw AutoupdateError(
                    .processRunning, "the watch (pid \(pid)) ended before it answered; `autoupdate status` shows what is installed")
            }
            // A signal sent before the watch listened is not lost for good: it is sent again
            // while the request waits (the watch takes the file once, so repeats do nothing).
            if pending, ContinuousClock.now >= nextSignal {
                kill(pid, SIGUSR1)
                nextSignal = ContinuousClock.now + .seconds(1)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        try? folder.removeIfPresent(folder.rollbackRequestPath)
        throw AutoupdateError(.timeout, "the watch (pid \(pid)) did not answer the rollback request within \(timeout)")
    }
}
