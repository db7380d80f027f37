#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import ServiceLifecycle
import UnixSignals

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
    /// How a new version proves it is ready, when it must: within ``healthWindow``, or it is
    /// rolled back. `nil`: a new version that has not failed by the window's end is confirmed.
    public var health: HealthCheck?
    /// How many starts a new version gets before it must have passed its health window: when
    /// the watcher (or the machine) dies during the window, the next watch gives it another
    /// start while it has some left, and rolls it back before starting anything otherwise.
    /// Default 1.
    public var trialAttempts: Int
    /// How many replaced versions stay kept in the update folder once a new version is
    /// confirmed, for `autoupdate rollback` (the lowest versions go first). Default 1.
    public var keep: Int
    /// With readiness by notification: the app must send `WATCHDOG=1` at least this often once
    /// it has said `READY=1`; a missed ping stops it as hung (a failure: rolled back within the
    /// health window, restarted after it).
    public var watchdog: Duration?
    /// Roll back when the process gets SIGUSR1, as `.pyautodownloads/rollback-request.json` asks
    /// (what `autoupdate rollback` relies on; see ``Updater/rollBack(toKept:waitingFor:)``). Off
    /// by default: a library does not take a signal its host may use.
    public var rollbackOnSIGUSR1: Bool
    /// When a new version may be installed (`--window`), local time; empty: at any time. Checks
    /// and downloads happen at any time; a prepared version waits for the next window, unless
    /// the release index makes it mandatory (a minimum version, a required release, a yank).
    public var installWindows: [InstallWindow]
    /// While this file exists no check is made and nothing is installed (`--inhibit-file`); `nil`:
    /// ``AppFolder/inhibitFilePath`` (`.pyautodownloads/inhibit`).
    public var inhibitFile: String?

    public init(
        interval: Duration = .seconds(300), jitter: Duration = .seconds(30), grace: Duration = .seconds(10),
        restart: RestartPolicy = .always, healthWindow: Duration = .seconds(30), retryBase: Duration = .seconds(1),
        maxRestartDelay: Duration = .seconds(60), trialAttempts: Int = 1, health: HealthCheck? = nil, keep: Int = 1,
        watchdog: Duration? = nil, rollbackOnSIGUSR1: Bool = false, installWindows: [InstallWindow] = [], inhibitFile: String? = nil
    ) {
        self.installWindows = installWindows
        self.inhibitFile = inhibitFile
        self.rollbackOnSIGUSR1 = rollbackOnSIGUSR1
        self.watchdog = watchdog
        self.keep = max(0, keep)
        self.health = health
        self.trialAttempts = max(1, trialAttempts)
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
    /// A new version is ready, outside every install window: it installs when the next one
    /// opens, this long from now.
    case waitingForWindow(Version, opensIn: Duration)
    /// Updates are inhibited: `file` exists, so nothing was checked (or installed).
    case inhibited(file: String)
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
/// A `Watcher` is also a swift-service-lifecycle `Service`: a server app can run it in its own
/// `ServiceGroup`, which stops it gracefully (the app gets SIGTERM, nothing is left half-installed)
/// on the group's graceful shutdown.
///
/// One task tree: the app runs as a supervised child while `version.txt` is polled every
/// interval (plus jitter) with conditional requests. A new version is downloaded, extracted and
/// verified while the old one keeps running; only then is the old one stopped (SIGTERM, SIGKILL
/// after the grace), the new one installed (journaled) and started: the gap between the two
/// holds no network or extraction work. A new version that fails within the health window is
/// rolled back to the previous one, which is restarted, and is not installed again. Failed
/// checks back off exponentially (honouring `Retry-After`) and never touch the app. Cancelling
/// the task that runs the watch stops the app gracefully and leaves no install half-done.
///
/// Every decision is a value-type state machine's; this actor performs them. Its timers and
/// its checks are child tasks of `run()`, so none outlives it.
public actor Watcher: Service {
    public nonisolated let configuration: WatchConfiguration
    public nonisolated let folder: AppFolder
    /// What the watch does, as it does it. Buffers the newest 512 events when nobody reads.
    public nonisolated let events: AsyncStream<WatchEvent>
    /// The exit code the watch ended with, once `run()` has returned.
    public private(set) var exitCode: Int32?

    private let eventSink: AsyncStream<WatchEvent>.Continuation
    private let updater: Updater
    /// For `https` readiness URLs: verified as updates are.
    private let download: DownloadConfiguration
    private let supervisor: ProcessSupervisor
    private let logger: Logger
    private let wakeups: AsyncStream<Wakeup>
    private let wakeupSink: AsyncStream<Wakeup>.Continuation
    private var started = false

    private enum Wakeup: Sendable {
        case exited(pid: Int32, status: TerminationStatus, at: ContinuousClock.Instant)
        case timer(WatchStateMachine.Timer, generation: Int)
        case checkNow
        /// A check ended; `failure` is its error when it failed.
        case checkFinished(WatchStateMachine.CheckResult, failure: (any Error)?)
        /// The readiness checks of this generation passed.
        case ready(generation: Int)
        /// A notification (`READY=1`, `STATUS=…`) from process `sender`.
        case notified(sender: Int32, [String: String])
        /// SIGUSR1: the control file says what to roll back to.
        case rollbackSignal
        case rollbackOrdered(RollbackOrder)
        case shutdown
    }

    /// A rollback asked of this watch, and where its answer goes.
    private struct RollbackOrder: Sendable {
        enum Answer: Sendable {
            /// A caller of ``Watcher/rollBack(to:)`` waiting under this key.
            case caller(Int)
            /// `rollback-result.json`, with the request's token.
            case file(id: String?)
        }

        var version: Version?
        var answer: Answer
    }

    /// The loop's own state: what the machine decided about, and what it does not need to know.
    private var machine: WatchStateMachine
    /// The update a finished check prepared, waiting for the swap.
    private let prepared = Locked<PreparedUpdate?>(nil)
    /// The previous version kept while a new one is on probation, and the new one's version.
    private var probation: (previous: PreviousVersion, candidate: Version)?
    /// The readiness checks running now; a new probation, or its end, supersedes them.
    private var healthGeneration = 0
    /// With `--ready notify`: the socket the app reports to, and whether the app running now
    /// has said `READY=1`.
    private let notifySocket: NotifySocket?
    private var appSaidReady = false
    /// autoupdate's own `NOTIFY_SOCKET` (under systemd `Type=notify`), told once the app is up.
    private let systemdNotify: String?
    private var toldSystemd = false
    /// Ends the check running now (a rollback asked for goes first).
    private var checkCancel: AsyncStream<Void>.Continuation?
    /// The rollback asked for, until it is done.
    private var pendingRollback: RollbackOrder?
    private var rollbackWaiters: [Int: CheckedContinuation<(from: Version, to: Version), any Error>] = [:]
    private var nextRollbackWaiter = 0
    /// The loop no longer takes requests.
    private var loopEnded = false

    /// - Parameters: as ``Launcher``'s, plus the watch's ``WatchConfiguration``.
    public init(
        filepath: String, url: String, newfiles: String = "project.zip", args: [String] = [], kwargs: [String: String] = [:],
        folder: AppFolder = AppFolder(), download: DownloadConfiguration = DownloadConfiguration(),
        extraction: ExtractionConfiguration = ExtractionConfiguration(), trust: TrustPolicy = TrustPolicy(),
        checkTimeout: Duration = UpdaterConfiguration.defaultCheckTimeout, channel: String = "stable", pin: VersionSpecifierSet? = nil,
        differential: DifferentialUpdates = .automatic, mirrors: [UpdateURL] = [], adoptsOrphans: Bool = false,
        configuration: WatchConfiguration = WatchConfiguration(),
        logger: Logger = Logger(label: "autoupdate.watch")
    ) throws {
        self.folder = folder
        self.configuration = configuration
        self.logger = logger
        self.download = download
        machine = WatchStateMachine(configuration: configuration)
        let executable = try folder.resolve(filepath)
        let updateURL = try UpdateURL(source: url)
        let archive = try ArchiveName(newfiles)
        updater = Updater(
            folder: folder, url: updateURL,
            configuration: UpdaterConfiguration(
                archive: archive, download: download, extraction: extraction, trust: trust, checkTimeout: checkTimeout,
                channel: channel, pin: pin, differential: differential, mirrors: mirrors),
            logger: logger)
        let context = UpdateContext(
            filepath: executable, url: updateURL, newfiles: archive, parentPID: getpid(), folder: folder,
            logLevel: logger.logLevel, kwargs: kwargs, caFile: download.caFile, trust: trust, channel: channel, pin: pin)
        var app = context.appConfiguration(arguments: args, grace: configuration.grace, adoptsOrphans: adoptsOrphans)
        // systemd's socket is autoupdate's, not the app's; with --ready notify the app gets ours.
        systemdNotify = app.environment.removeValue(forKey: "NOTIFY_SOCKET").flatMap { $0.isEmpty ? nil : $0 }
        if configuration.health?.probe == .notify {
            let socket = try NotifySocket(in: folder)
            app.environment["NOTIFY_SOCKET"] = socket.address
            notifySocket = socket
        } else {
            notifySocket = nil
        }
        supervisor = ProcessSupervisor(app, logger: logger)
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

    /// Runs the watch until the calling task is cancelled, the service group that runs it shuts
    /// down gracefully, or the app's exit ends it (restart policy `never`, or `on-failure` after a
    /// clean exit).
    ///
    /// - Returns: The exit code to end with: the app's (shell style, 128+N after signal N) when
    ///   its exit ended the watch, 0 after cancellation or shutdown.
    /// - Throws: ``AutoupdateError`` when the app cannot be started at all.
    @discardableResult
    public func run() async throws -> Int32 {
        guard !started else {
            throw AutoupdateError(.processRunning, "this watch has already run; make a new Watcher")
        }
        started = true
        // Listening before the pid is written: a rollback request's SIGUSR1 must never find the
        // signal's default action (the end of the process).
        let rollbackSignals = configuration.rollbackOnSIGUSR1 ? await UnixSignalsSequence(trapping: .sigusr1) : nil
        let watchLock: FileLock?
        do {
            watchLock = try await folder.waitingBriefly { [folder] in try folder.lockForWatch(listening: rollbackSignals != nil) }
        } catch let error as AutoupdateError where error.code == .processRunning {
            throw error
        } catch {
            logger.attention("cannot take the watch's lock; rollback requests cannot reach this watch", metadata: ["error": "\(error)"])
            watchLock = nil
        }
        if updater.hasInterruptedInstall {
            _ = try await updater.recoverForStart()
        }
        // A trial the last watch (or machine) left undecided is decided before anything starts.
        var resumedTrial = false
        do {
            switch try await updater.resolveTrialForStart() {
            case .continuing(let candidate, let previous, _, _):
                probation = (previous, candidate)
                resumedTrial = true
            case .rolledBack(let bad, let previous):
                eventSink.yield(.rolledBack(bad: bad, to: previous, reason: "its trial was not confirmed before the last watch ended"))
            case .none, .cleared:
                break
            }
        } catch {
            // Whatever is installed is whole (every step is journaled): it starts.
            logger.attention("cannot decide the trial; starting what is installed", metadata: ["error": "\(error)"])
        }
        // The app's notifications, read by a thread of ours in short waits until the watch ends.
        let listening = Locked(true)
        let listener = notifySocket.map { socket in
            BackgroundThread.start(name: "autoupdate.notify") { [sink = wakeupSink] in
                while listening.withLock({ $0 }) {
                    if let (sender, message) = socket.receive() {
                        sink.yield(.notified(sender: sender, message))
                    }
                }
            }
        }
        defer { listening.withLock { $0 = false } }
        try await startApp()
        let initial = resumedTrial ? machine.trialResumed() : []
        let sink = wakeupSink
        let code = await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let rollbackSignals {
                    group.addTask {
                        for await _ in rollbackSignals { sink.yield(.rollbackSignal) }
                    }
                }
                return await loop(group: &group, initial: initial)
            }
        } onGracefulShutdown: {
            sink.yield(.shutdown)
        }
        endRequests()
        listening.withLock { $0 = false }
        await listener?.value
        // Cancelled, shut down or ended by the policy: stop the app gracefully, keep what is
        // installed. A new version still on trial stays so, with its kept version: the next
        // start decides it.
        await supervisor.terminate()
        prepared.withLock { $0.take() }?.discard()
        probation = nil
        exitCode = code
        // The lock goes before the signal's handling: no request is sent to a watch that is over.
        withExtendedLifetime(watchLock) {}
        withExtendedLifetime(rollbackSignals) {}
        eventSink.yield(.stopped(exitCode: code))
        return code
    }

    /// Puts a kept version back while the watch runs (what `autoupdate rollback` asks of a
    /// running watch, over SIGUSR1): a check under way is cancelled, the app stopped, the version
    /// put back (journaled; the version replaced is kept and marked bad, as by
    /// ``Updater/rollBack(toKept:waitingFor:)``) and started.
    ///
    /// - Parameter version: The kept version; `nil` for the highest kept one below the installed one.
    /// - Returns: The version replaced and the one put back.
    /// - Throws: ``AutoupdateError`` `.invalidArgument` when no such version is kept or the watch
    ///   is not running; `.locked` while another rollback is under way.
    public func rollBack(to version: Version? = nil) async throws -> (from: Version, to: Version) {
        guard started, !loopEnded else {
            throw AutoupdateError(.invalidArgument, "the watch is not running: Updater.rollBack(toKept:) rolls back without it")
        }
        nextRollbackWaiter += 1
        let key = nextRollbackWaiter
        return try await withCheckedThrowingContinuation { continuation in
            rollbackWaiters[key] = continuation
            wakeupSink.yield(.rollbackOrdered(RollbackOrder(version: version, answer: .caller(key))))
        }
    }

    /// The same watch as a `Service` (its exit code is then ``exitCode``).
    @_disfavoredOverload
    public func run() async throws {
        let _: Int32 = try await run()
    }

    /// Feeds the machine every wake-up and performs what it answers, until the watch is over.
    private func loop(group: inout DiscardingTaskGroup, initial: [WatchStateMachine.Action]) async -> Int32 {
        var pending = initial + machine.watchStarted()
        var code: Int32 = 0
        var iterator = wakeups.makeAsyncIterator()
        while true {
            // Actions may lead to more (a swap ends in a check schedule): perform until none is left.
            while !pending.isEmpty {
                let action = pending.removeFirst()
                if case .end(let exitCode) = action {
                    code = exitCode
                    group.cancelAll()
                    return code
                }
                pending += await perform(action, group: &group)
            }
            guard !Task.isCancelled, let wakeup = await iterator.next() else {
                // Cancelled, or the stream ended: stop (once; an ended machine has nothing left).
                pending = machine.stop()
                if pending.isEmpty { return code }
                continue
            }
            switch wakeup {
            case .exited(let pid, let status, let at):
                eventSink.yield(.exited(pid: pid, status: status))
                pending = machine.appExited(pid: pid, status: status, at: at)
            case .timer(let timer, let generation):
                pending = machine.timerFired(timer, generation: generation, at: .now)
            case .checkNow:
                pending = machine.checkRequested(at: .now)
            case .checkFinished(var result, let failure):
                checkCancel = nil
                if result == .prepared, let waiting = prepared.withLock({ $0 }), !waiting.isMandatory,
                    let wait = InstallWindow.wait(until: configuration.installWindows, fromSecondOfDay: InstallWindow.localSecondOfDay()),
                    wait > .zero
                {
                    result = .preparedOutsideWindow(opensIn: wait)
                    eventSink.yield(.waitingForWindow(waiting.version, opensIn: wait))
                }
                pending = machine.checkFinished(result)
                if let failure {
                    reportCheckFailure(failure, actions: pending)
                }
            case .ready(let generation):
                if generation == healthGeneration {
                    machine.appReady()
                }
            case .notified(let sender, let message):
                // Only the app running now counts (it or a process of its group): a late
                // message of the version it replaced must not make it ready.
                if let app = machine.appPID, sender > 0, sender == app || getpgid(sender) == app {
                    pending = noted(message)
                } else {
                    logger.debug("a notification not from the app is ignored", metadata: ["process.pid": "\(sender)"])
                }
            case .rollbackSignal:
                pending = rollbackSignalled()
            case .rollbackOrdered(let order):
                pending = ordered(order)
            case .shutdown:
                healthGeneration += 1
                pending = machine.stop()
            }
        }
    }

    /// Performs one action; returns the actions that follow from its outcome.
    private func perform(_ action: WatchStateMachine.Action, group: inout DiscardingTaskGroup) async -> [WatchStateMachine.Action] {
        let sink = wakeupSink
        switch action {
        case .schedule(let timer, let delay, let generation):
            if timer == .restart {
                logger.info("restarting the app", metadata: ["watch.delay": "\(delay)"])
            }
            group.addTask {
                // A cancelled timer (the watch ended) fires nothing.
                guard (try? await Task.sleep(for: delay)) != nil else { return }
                sink.yield(.timer(timer, generation: generation))
            }
            return []
        case .check:
            let updater = updater
            let folder = folder
            let events = eventSink
            let prepared = prepared
            let inhibitFile = inhibitFile
            let (cancelled, cancel) = AsyncStream.makeStream(of: Void.self)
            checkCancel = cancel
            group.addTask {
                // The check, unless a rollback asked for cancels it first.
                let (result, failure) = await withTaskGroup(of: (WatchStateMachine.CheckResult, (any Error)?)?.self) { race in
                    race.addTask {
                        await Self.check(updater: updater, folder: folder, events: events, prepared: prepared, inhibitFile: inhibitFile)
                    }
                    race.addTask {
                        for await _ in cancelled {}
                        return nil
                    }
                    var outcome: (WatchStateMachine.CheckResult, (any Error)?) = (.cancelled, nil)
                    while let next = await race.next() {
                        race.cancelAll()
                        if let next { outcome = next }
                    }
                    return outcome
                }
                sink.yield(.checkFinished(result, failure: failure))
            }
            return []
        case .cancelCheck:
            checkCancel?.finish()
            return []
        case .rollBackAsRequested:
            return await rollBackAsRequested()
        case .swap:
            return await swap()
        case .startApp:
            do {
                try await startApp()
                return []
            } catch {
                logger.attention("cannot restart the app", metadata: ["error": "\(error)"])
                return machine.appStartFailed()
            }
        case .rollBack(let reason):
            return await rollBack(because: reason)
        case .startHealthChecks:
            startHealthChecks(group: &group)
            return []
        case .stopHungApp:
            logger.attention(
                "the app missed its watchdog; stopping it", metadata: ["watch.watchdog": "\(configuration.watchdog ?? .zero)"])
            _ = await supervisor.terminate()
            return []
        case .discardPrevious:
            healthGeneration += 1
            logger.info(
                "the new version passed its health window", metadata: ["update.version": "\(probation?.candidate.description ?? "")"])
            if let probation {
                updater.confirmTrial(probation.previous, keeping: configuration.keep)
                self.probation = nil
            }
            return []
        case .end:
            return []  // the loop ends on it
        }
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
        machine.appStarted(pid: pid, at: .now)
        appSaidReady = false
        if configuration.health?.probe != .notify {
            tellSystemdReady()
        }
        let started = WatchEvent.started(pid: pid, version: folder.readVersionDoc().value)
        if announce {
            eventSink.yield(started)
        }
        return started
    }

    // MARK: Updates

    /// Checks the server and prepares a newer version, alongside the app (a child task of
    /// ``run()``; touches nothing the loop owns but the `prepared` slot).
    private static func check(
        updater: Updater, folder: AppFolder, events: AsyncStream<WatchEvent>.Continuation, prepared: Locked<PreparedUpdate?>,
        inhibitFile: String
    ) async -> (WatchStateMachine.CheckResult, (any Error)?) {
        guard !FileManager.default.fileExists(atPath: inhibitFile) else {
            events.yield(.inhibited(file: inhibitFile))
            return (.inhibited, nil)
        }
        do {
            let result = try await check(updater: updater, folder: folder, events: events, prepared: prepared)
            if result == .prepared, FileManager.default.fileExists(atPath: inhibitFile) {
                // Inhibited while it downloaded: nothing is installed.
                prepared.withLock { $0.take() }?.discard()
                events.yield(.inhibited(file: inhibitFile))
                return (.inhibited, nil)
            }
            return (result, nil)
        } catch is CancellationError {
            return (.cancelled, nil)
        } catch {
            guard !Task.isCancelled else { return (.cancelled, nil) }
            return (.failed(retryAfter: (error as? AutoupdateError)?.retryAfter), error)
        }
    }

    private static func check(
        updater: Updater, folder: AppFolder, events: AsyncStream<WatchEvent>.Continuation, prepared: Locked<PreparedUpdate?>
    ) async throws -> WatchStateMachine.CheckResult {
        do {
            let result = try await updater.checkServer()
            guard let available = result.available else {
                events.yield(.upToDate(result.installed, notModified: result.notModified))
                return .upToDate
            }
            if folder.readBadVersions().contains(available) {
                // Not queued: the next check asks the server again, and finds a newer one.
                try? folder.removeQueue()
                events.yield(.skippedBad(available))
                return .skippedBad
            }
            events.yield(.preparing(available))
            guard let update = try await updater.prepare() else {
                return .upToDate
            }
            events.yield(.prepared(update.version))
            if Task.isCancelled {
                update.discard()
                return .cancelled
            }
            prepared.withLock { $0 = update }
            return .prepared
        }
    }

    /// Stops the app, installs the prepared version and starts it: nothing slow in between.
    private func swap() async -> [WatchStateMachine.Action] {
        guard let update = prepared.withLock({ $0.take() }) else {
            return machine.swapFinished(.failed(retryAfter: nil), at: .now)
        }
        if FileManager.default.fileExists(atPath: inhibitFile) {
            // Inhibited while the version waited for its window.
            update.discard()
            eventSink.yield(.inhibited(file: inhibitFile))
            return machine.swapSkipped(appStillRunning: await supervisor.pid)
        }
        let oldPID = await supervisor.pid
        _ = await supervisor.terminate()
        let stoppedAt = ContinuousClock.now
        let previous: PreviousVersion?
        do {
            previous = try await updater.installOnTrial(update, starts: configuration.trialAttempts)
        } catch {
            // The install rolled itself back: the old version runs again.
            logger.info("install failed; restarting the installed version", metadata: ["error": "\(error)"])
            _ = try? await startApp()
            let actions = machine.swapFinished(.failed(retryAfter: (error as? AutoupdateError)?.retryAfter), at: .now)
            reportCheckFailure(error, actions: actions)
            return actions
        }
        do {
            let started = try await startApp(announce: false)
            let gap = ContinuousClock.now - stoppedAt
            logger.info(
                "swapped versions",
                metadata: [
                    "update.version.old": "\(update.installed)", "update.version.new": "\(update.version)",
                    "watch.swap_gap": "\(gap)", "process.pid.old": "\(oldPID ?? 0)",
                ])
            eventSink.yield(.swapped(from: update.installed, to: update.version, gap: gap))
            eventSink.yield(started)
        } catch {
            logger.attention("cannot start the new version", metadata: ["error": "\(error)"])
        }
        if let previous {
            probation = (previous, update.version)
        }
        return machine.swapFinished(.installed(keptPrevious: previous != nil), at: .now)
    }

    /// Runs the readiness command every interval, alongside the app, until it passes as often as
    /// asked in a row, or the probation ends (a newer generation), or the watch does.
    private func startHealthChecks(group: inout DiscardingTaskGroup) {
        guard let health = configuration.health else { return }
        healthGeneration += 1
        if health.probe == .notify {
            // The app's READY=1 is the check; it may have come already.
            if appSaidReady { machine.appReady() }
            return
        }
        let generation = healthGeneration
        let folder = folder
        let sink = wakeupSink
        var environment = ProcessInfo.processInfo.environment
        environment["AUTOUPDATE_DIR"] = folder.path
        let logger = logger
        let download = download
        group.addTask { [environment] in
            var passes = 0
            while !Task.isCancelled, await self.isCurrent(healthGeneration: generation) {
                if await health.check(in: folder, environment: environment, download: download) {
                    passes += 1
                    if passes >= health.passes {
                        logger.info("the new version is ready", metadata: ["health.passes": "\(passes)"])
                        sink.yield(.ready(generation: generation))
                        return
                    }
                } else {
                    passes = 0
                }
                guard (try? await Task.sleep(for: health.interval)) != nil else { return }
            }
        }
    }

    /// A notification from the app: `READY=1` makes a new version on probation ready (and tells
    /// systemd, once, that the service is up); `STATUS=` is logged.
    private func noted(_ message: [String: String]) -> [WatchStateMachine.Action] {
        if let status = message["STATUS"] {
            logger.info("the app says", metadata: ["app.status": "\(status)"])
        }
        var actions: [WatchStateMachine.Action] = []
        if let extra = message["EXTEND_TIMEOUT_USEC"].flatMap(Int64.init), extra > 0 {
            actions += machine.probationExtended(by: .microseconds(extra), at: .now)
        }
        if message["WATCHDOG"] == "1" || message["READY"] == "1" {
            actions += machine.appPinged()
        }
        if message["READY"] == "1", !appSaidReady {
            appSaidReady = true
            logger.info("the app is ready", metadata: ["process.pid": "\(machine.appPID ?? 0)"])
            machine.appReady()
            tellSystemdReady()
        }
        return actions
    }

    /// Under systemd `Type=notify`: the service is up (once the app is ready, with
    /// `--ready notify`; once it has started, otherwise).
    private func tellSystemdReady() {
        guard let systemdNotify, !toldSystemd else { return }
        toldSystemd = true
        NotifySocket.send("READY=1\nMAINPID=\(getpid())\n", to: systemdNotify)
    }

    private nonisolated var inhibitFile: String {
        configuration.inhibitFile ?? folder.inhibitFilePath
    }

    private func isCurrent(healthGeneration generation: Int) -> Bool {
        healthGeneration == generation
    }

    private func rollBack(because reason: String) async -> [WatchStateMachine.Action] {
        healthGeneration += 1
        guard let probation else {
            return machine.rollbackFinished(succeeded: false)
        }
        self.probation = nil
        // Not ready in time, the new version may still run: it stops first (SIGTERM, then SIGKILL).
        _ = await supervisor.terminate()
        do {
            try await updater.rollBack(to: probation.previous, reason: reason)
            eventSink.yield(.rolledBack(bad: probation.candidate, to: probation.previous.version, reason: reason))
            return machine.rollbackFinished(succeeded: true)
        } catch {
            logger.attention("rollback failed", metadata: ["error": "\(error)"])
            return machine.rollbackFinished(succeeded: false)
        }
    }

    // MARK: Rollbacks asked for

    /// SIGUSR1: takes the control file's request (none: nothing to do).
    private func rollbackSignalled() -> [WatchStateMachine.Action] {
        let request: WatchControl.Request
        do {
            guard let taken = try folder.takeRollbackRequest() else {
                logger.info(
                    "SIGUSR1 without a rollback request: nothing to do (`autoupdate rollback` writes one)",
                    metadata: ["file": "\(folder.rollbackRequestPath)"])
                return []
            }
            request = taken
        } catch {
            answer(RollbackOrder(version: nil, answer: .file(id: nil)), .failure(error))
            return []
        }
        let order = RollbackOrder(version: nil, answer: .file(id: request.id))
        do {
            return ordered(RollbackOrder(version: try request.to.map { try Version($0) }, answer: order.answer))
        } catch {
            answer(order, .failure(error))
            return []
        }
    }

    /// A rollback asked for: refused at once when it cannot be done (the app untouched), else
    /// the machine says when.
    private func ordered(_ order: RollbackOrder) -> [WatchStateMachine.Action] {
        guard pendingRollback == nil else {
            answer(order, .failure(AutoupdateError(.locked, "a rollback is already under way; ask again once it has ended")))
            return []
        }
        do {
            _ = try updater.rollbackTarget(toKept: order.version)
        } catch {
            answer(order, .failure(error))
            return []
        }
        let actions = machine.rollbackRequested()
        guard !actions.isEmpty else {
            answer(order, .failure(AutoupdateError(.processRunning, "the watch is stopping; roll back once it has")))
            return []
        }
        logger.info("a rollback is asked for", metadata: ["update.version": "\(order.version.map(\.description) ?? "the previous one")"])
        pendingRollback = order
        return actions
    }

    /// Stops the app, puts the kept version back, and starts what is installed then.
    private func rollBackAsRequested() async -> [WatchStateMachine.Action] {
        healthGeneration += 1
        // The person decides over a version on probation, and over an update waiting to swap.
        probation = nil
        prepared.withLock { $0.take() }?.discard()
        _ = await supervisor.terminate()
        if let order = pendingRollback {
            pendingRollback = nil
            do {
                let (from, to) = try await updater.rollBackHere(toKept: order.version)
                eventSink.yield(.rolledBack(bad: from, to: to, reason: "a rollback was asked for"))
                answer(order, .success((from, to)))
            } catch {
                logger.attention("the rollback asked for failed; starting what is installed", metadata: ["error": "\(error)"])
                answer(order, .failure(error))
            }
        }
        return machine.requestedRollbackFinished()
    }

    private func answer(_ order: RollbackOrder, _ result: Result<(from: Version, to: Version), any Error>) {
        switch order.answer {
        case .caller(let key):
            rollbackWaiters.removeValue(forKey: key)?.resume(with: result)
        case .file(let id):
            let outcome: WatchControl.Outcome
            switch result {
            case .success(let versions):
                outcome = WatchControl.Outcome(id: id, rolledBack: true, from: versions.from.description, to: versions.to.description)
            case .failure(let error):
                outcome = WatchControl.Outcome(id: id, rolledBack: false, error: (error as? AutoupdateError)?.message ?? "\(error)")
            }
            do {
                try folder.writeRollbackOutcome(outcome)
            } catch {
                logger.attention("cannot write the rollback's answer", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The loop is over: whatever was asked and not done is answered so.
    private func endRequests() {
        loopEnded = true
        let stopped = AutoupdateError(.processRunning, "the watch stopped before it rolled back; nothing was rolled back")
        if let order = pendingRollback {
            pendingRollback = nil
            answer(order, .failure(stopped))
        }
        for waiter in rollbackWaiters.values {
            waiter.resume(throwing: stopped)
        }
        rollbackWaiters = [:]
    }

    private func reportCheckFailure(_ error: any Error, actions: [WatchStateMachine.Action]) {
        guard let delay = WatchStateMachine.checkDelay(in: actions) else { return }
        let message = (error as? AutoupdateError)?.message ?? "\(error)"
        logger.info("check failed; the app keeps running", metadata: ["error": "\(message)", "watch.retry": "\(delay)"])
        eventSink.yield(.checkFailed(message: message, retryIn: delay))
    }
}
