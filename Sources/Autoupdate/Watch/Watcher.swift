import Foundation
public import Logging
import Glibc

/// How ``Watcher`` keeps an app running and up to date.
public struct WatchConfiguration: Sendable {
    /// When to start the app again after it exits on its own.
    public enum RestartPolicy: String, Sendable, CaseIterable {
        /// Always (with exponential backoff).
        case always
        /// Only after a non-zero exit or a death by signal; a clean exit ends the watch.
        case onFailure = "on-failure"
        /// Never: the app's exit ends the watch.
        case never
    }

    /// Between two checks of `version.txt`. Default 5 minutes.
    public var interval: Duration
    /// A random extra delay, up to this, before each check (so that a fleet does not poll in step).
    public var jitter: Duration
    /// Between SIGTERM and SIGKILL when the app is stopped for an update or at the end.
    public var grace: Duration
    public var restart: RestartPolicy
    /// A new version that exits non-zero or dies within this long after its start is rolled back.
    public var healthWindow: Duration
    /// The first retry delay after a failed check or an app exit; doubled each time, up to `interval`
    /// for checks and `maxRestartDelay` for restarts.
    public var retryBase: Duration
    public var maxRestartDelay: Duration

    public init(
        interval: Duration = .seconds(300), jitter: Duration = .seconds(30), grace: Duration = .seconds(10),
        restart: RestartPolicy = .always, healthWindow: Duration = .seconds(30), retryBase: Duration = .seconds(1),
        maxRestartDelay: Duration = .seconds(60)
    ) {
        self.interval = interval
        self.jitter = jitter
        self.grace = grace
        self.restart = restart
        self.healthWindow = healthWindow
        self.retryBase = retryBase
        self.maxRestartDelay = maxRestartDelay
    }
}

/// What a ``Watcher`` did.
public enum WatchEvent: Sendable, Equatable {
    /// The app started (`version` is what `version.txt` says).
    case started(pid: Int32, version: Version?)
    /// The app ended.
    case exited(pid: Int32, status: TerminationStatus)
    /// A check found nothing new (`notModified`: the server answered 304).
    case upToDate(Version, notModified: Bool)
    /// A check or download failed; the next try comes after `retryIn`.
    case checkFailed(message: String, retryIn: Duration)
    /// A newer version was found; it downloads while the app keeps running.
    case preparing(Version)
    /// A newer version is downloaded, extracted and verified, while the app keeps running.
    case prepared(Version)
    /// The old app ended and the new version started: `gap` is the time between the two.
    case swapped(from: Version, to: Version, gap: Duration)
    /// A new version failed within the health window and the previous one was put back.
    case rolledBack(bad: Version, to: Version, reason: String)
    /// A version marked bad by an earlier rollback was skipped.
    case skippedBad(Version)
    /// The watch is over.
    case stopped(exitCode: Int32)
}

/// Keeps an app running and up to date without a person: `autoupdate watch`.
///
/// ```swift
/// let watcher = try Watcher(filepath: "bin/server", url: "https://example.com/server/",
///                           folder: AppFolder(path: "/opt/server"),
///                           configuration: WatchConfiguration(interval: .seconds(60)))
/// let code = try await watcher.run()     // until cancelled (SIGTERM), or the app's exit if asked
/// ```
///
/// One task tree: the app runs as a supervised child while `version.txt` is polled every
/// interval (plus jitter) with conditional requests. A new version is downloaded, extracted and
/// verified while the old one keeps running; only then is the old one stopped (SIGTERM, SIGKILL
/// after the grace), the new one installed (journaled) and started: the gap between the two
/// holds no network or extraction work. A new version that fails within the health window is
/// rolled back to the previous one, which is restarted, and is not installed again. Failed
/// checks back off exponentially (honouring `Retry-After`) and never touch the app. Cancelling
/// the task that runs the watch stops the app gracefully and leaves no install half-done.
public actor Watcher {
    public nonisolated let configuration: WatchConfiguration
    public nonisolated let folder: AppFolder
    /// What the watch does, as it does it. Buffers the newest 512 events when nobody reads.
    public nonisolated let events: AsyncStream<WatchEvent>

    private let eventSink: AsyncStream<WatchEvent>.Continuation
    private let updater: Updater
    private let supervisor: ProcessSupervisor
    private let logger: Logger
    private let wakeups: AsyncStream<Wakeup>
    private let wakeupSink: AsyncStream<Wakeup>.Continuation

    private enum Wakeup: Sendable {
        case exited(pid: Int32, status: TerminationStatus, at: ContinuousClock.Instant)
        case checkDue(generation: Int)
        case checkNow
        case restartDue(generation: Int)
    }

    // The loop's state.
    private var checkGeneration = 0
    private var restartGeneration = 0
    private var failedChecks = 0
    private var failedRuns = 0
    private var lastStart = ContinuousClock.now
    private var healthWindow: (previous: PreviousVersion, bad: Version, until: ContinuousClock.Instant)?
    private var started = false

    /// - Parameters: as ``Launcher``'s, plus the watch's ``WatchConfiguration``.
    public init(
        filepath: String, url: String, newfiles: String = "project.zip", args: [String] = [], kwargs: [String: String] = [:],
        folder: AppFolder = AppFolder(), download: DownloadConfiguration = DownloadConfiguration(),
        extraction: ExtractionConfiguration = ExtractionConfiguration(), trust: TrustPolicy = TrustPolicy(),
        checkTimeout: Duration = UpdaterConfiguration.defaultCheckTimeout, adoptsOrphans: Bool = false,
        configuration: WatchConfiguration = WatchConfiguration(), logger: Logger = Logger(label: "autoupdate.watch")
    ) throws {
        self.folder = folder
        self.configuration = configuration
        self.logger = logger
        let executable = try folder.resolve(filepath)
        let updateURL = try UpdateURL(url)
        let archive = try ArchiveName(newfiles)
        updater = Updater(
            folder: folder, url: updateURL,
            configuration: UpdaterConfiguration(archive: archive, download: download, extraction: extraction, trust: trust, checkTimeout: checkTimeout),
            logger: logger)
        let context = UpdateContext(
            filepath: executable, url: updateURL, newfiles: archive, parentPID: getpid(), folder: folder,
            logLevel: logger.logLevel, kwargs: kwargs, caFile: download.caFile, trust: trust)
        supervisor = ProcessSupervisor(
            context.appConfiguration(arguments: args, grace: configuration.grace, adoptsOrphans: adoptsOrphans), logger: logger)
        (events, eventSink) = AsyncStream.makeStream(of: WatchEvent.self, bufferingPolicy: .bufferingNewest(512))
        (wakeups, wakeupSink) = AsyncStream.makeStream(of: Wakeup.self)
    }

    deinit {
        eventSink.finish()
        wakeupSink.finish()
    }

    /// Checks for an update now (what SIGHUP does to `autoupdate watch`).
    public nonisolated func checkNow() {
        wakeupSink.yield(.checkNow)
    }

    /// Runs the watch until the calling task is cancelled, or the app's exit ends it (restart
    /// policy `never`, or `on-failure` after a clean exit).
    ///
    /// - Returns: The exit code to end with: the app's (shell style, 128+N after signal N) when
    ///   its exit ended the watch, 0 after cancellation.
    /// - Throws: ``AutoupdateError`` when the app cannot be started at all.
    public func run() async throws -> Int32 {
        guard !started else {
            throw AutoupdateError(.processRunning, "this watch has already run; make a new Watcher")
        }
        started = true
        if updater.hasInterruptedInstall {
            _ = try await updater.recoverForStart()
        }
        try await startApp()
        scheduleCheck(after: configuration.interval + randomJitter())
        var exitCode: Int32 = 0
        loop: for await wakeup in wakeups {
            if Task.isCancelled { break }
            switch wakeup {
            case .exited(let pid, let status, let at):
                if let code = await appExited(pid: pid, status: status, at: at) {
                    exitCode = code
                    break loop
                }
            case .checkDue(let generation) where generation == checkGeneration:
                await check()
            case .checkNow:
                await check()
            case .restartDue(let generation) where generation == restartGeneration:
                do {
                    try await startApp()
                } catch {
                    logger.error("cannot restart the app", metadata: ["error": "\(error)"])
                    scheduleRestart()
                }
            case .checkDue, .restartDue:
                break  // superseded
            }
            if Task.isCancelled { break }
        }
        // Cancelled (SIGTERM) or ended by the policy: stop the app gracefully, keep what is installed.
        checkGeneration += 1
        restartGeneration += 1
        await supervisor.terminate()
        if let window = healthWindow {
            updater.discard(window.previous)
            healthWindow = nil
        }
        eventSink.yield(.stopped(exitCode: exitCode))
        return exitCode
    }

    // MARK: The app

    /// Starts the app; `announce: false` leaves the `started` event to the caller.
    @discardableResult
    private func startApp(announce: Bool = true) async throws -> WatchEvent {
        let lock = try await folder.waitingBriefly(for: folder.lockForRunning)
        let sink = wakeupSink
        let pid = try await supervisor.start(holding: lock) { pid, status in
            sink.yield(.exited(pid: pid, status: status, at: .now))
        }
        lastStart = .now
        let started = WatchEvent.started(pid: pid, version: folder.readVersionDoc().value)
        if announce {
            eventSink.yield(started)
        }
        return started
    }

    /// Handles an exit the watch did not ask for. Returns an exit code when the watch ends.
    private func appExited(pid: Int32, status: TerminationStatus, at: ContinuousClock.Instant) async -> Int32? {
        eventSink.yield(.exited(pid: pid, status: status))
        // An exit during a swap was asked for; the swap has started the new app already.
        guard await supervisor.pid == pid else { return nil }
        if let window = healthWindow, at < window.until, !status.isSuccess {
            await rollBack(window, because: "it \(status) \(Self.describe(at - lastStart)) after its start")
            return nil
        }
        switch configuration.restart {
        case .never:
            return status.shellExitCode
        case .onFailure where status.isSuccess:
            return 0
        case .always, .onFailure:
            failedRuns = at - lastStart > configuration.maxRestartDelay ? 1 : failedRuns + 1
            scheduleRestart()
            return nil
        }
    }

    private func scheduleRestart() {
        restartGeneration += 1
        let generation = restartGeneration
        let delay = exponentialBackoff(failure: failedRuns, base: configuration.retryBase, cap: configuration.maxRestartDelay)
        logger.notice("restarting the app", metadata: ["watch.delay": "\(delay)"])
        let sink = wakeupSink
        Task {
            try? await Task.sleep(for: delay)
            sink.yield(.restartDue(generation: generation))
        }
    }

    // MARK: Updates

    private func scheduleCheck(after delay: Duration) {
        checkGeneration += 1
        let generation = checkGeneration
        let sink = wakeupSink
        Task {
            try? await Task.sleep(for: delay)
            sink.yield(.checkDue(generation: generation))
        }
    }

    private func check() async {
        closeHealthWindowIfOver()
        if healthWindow != nil {
            // A new version is on probation; the next check comes once it has passed.
            scheduleCheck(after: configuration.healthWindow)
            return
        }
        do {
            let result = try await updater.checkServer()
            failedChecks = 0
            guard let available = result.available else {
                eventSink.yield(.upToDate(result.installed, notModified: result.notModified))
                scheduleCheck(after: configuration.interval + randomJitter())
                return
            }
            if folder.readBadVersions().contains(available) {
                // Not queued: the next check asks the server again, and finds a newer one.
                try? folder.removeQueue()
                eventSink.yield(.skippedBad(available))
                scheduleCheck(after: configuration.interval + randomJitter())
                return
            }
            eventSink.yield(.preparing(available))
            try await update()
            scheduleCheck(after: configuration.interval + randomJitter())
        } catch is CancellationError {
            return
        } catch {
            guard !Task.isCancelled else { return }
            failedChecks += 1
            let delay = delayHonouringRetryAfter(
                (error as? AutoupdateError)?.retryAfter,
                backoff: exponentialBackoff(failure: failedChecks, base: configuration.retryBase, cap: configuration.interval),
                interval: configuration.interval)
            let message = (error as? AutoupdateError)?.message ?? "\(error)"
            logger.warning("check failed; the app keeps running", metadata: ["error": "\(message)", "watch.retry": "\(delay)"])
            eventSink.yield(.checkFailed(message: message, retryIn: delay))
            scheduleCheck(after: delay)
        }
    }

    /// Prepares while the app runs, then swaps: stop, install, start. Nothing slow in between.
    private func update() async throws {
        guard let prepared = try await updater.prepare() else { return }
        eventSink.yield(.prepared(prepared.version))
        if Task.isCancelled {
            prepared.discard()
            throw CancellationError()
        }
        restartGeneration += 1  // a pending restart is superseded by the swap
        let oldPID = await supervisor.pid
        _ = await supervisor.terminate()
        let stoppedAt = ContinuousClock.now
        let previous: PreviousVersion?
        do {
            previous = try await updater.installKeepingPrevious(prepared)
        } catch {
            // The install rolled itself back: the old version runs again.
            logger.error("install failed; restarting the installed version", metadata: ["error": "\(error)"])
            _ = try? await startApp()
            throw error
        }
        let started = try await startApp(announce: false)
        let gap = ContinuousClock.now - stoppedAt
        logger.notice("swapped versions", metadata: [
            "update.version.old": "\(prepared.installed)", "update.version.new": "\(prepared.version)",
            "watch.swap_gap": "\(gap)", "process.pid.old": "\(oldPID ?? 0)",
        ])
        eventSink.yield(.swapped(from: prepared.installed, to: prepared.version, gap: gap))
        eventSink.yield(started)
        if let previous {
            healthWindow = (previous, prepared.version, lastStart + configuration.healthWindow)
        }
    }

    private func rollBack(_ window: (previous: PreviousVersion, bad: Version, until: ContinuousClock.Instant), because reason: String) async {
        healthWindow = nil
        do {
            try await updater.rollBack(to: window.previous, reason: reason)
            eventSink.yield(.rolledBack(bad: window.bad, to: window.previous.version, reason: reason))
            failedRuns = 0
            try await startApp()
        } catch {
            logger.error("rollback failed", metadata: ["error": "\(error)"])
            scheduleRestart()
        }
    }

    private func closeHealthWindowIfOver() {
        if let window = healthWindow, ContinuousClock.now >= window.until {
            updater.discard(window.previous)
            healthWindow = nil
        }
    }

    // MARK: Timing

    private func randomJitter() -> Duration {
        let limit = configuration.jitter.milliseconds
        return limit > 0 ? .milliseconds(Int64.random(in: 0...limit)) : .zero
    }

    private static func describe(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.timeInterval)
    }
}
