/// Every decision of a ``Watcher``, sans I/O: when to check, when to restart the app and after
/// how long, when a new version is on probation and when it is rolled back, and when the watch
/// is over. The watcher feeds it what happened (the app started or exited, a timer fired, a
/// check or a swap finished, a signal came) and performs what it answers; tests drive every
/// rule with plain values and a fixed clock.
///
/// Timers are generations: scheduling a timer of a kind supersedes the one before it, and a
/// superseded timer's firing is ignored. A check runs alongside the app (it only downloads and
/// verifies); the swap it leads to is one step of the watcher's loop, so no restart can start
/// the app in the middle of an install.
struct WatchStateMachine {
    typealias Instant = ContinuousClock.Instant

    enum Timer: Sendable, Equatable {
        case check
        case restart
        /// The end of a new version's health window, when it must prove it is ready.
        case probation
        /// The app's watchdog (`--watchdog`): a ping must come before it fires.
        case watchdog
        /// An install window opens (`--window`): the prepared version waiting for it swaps in.
        case installWindow
    }

    enum Action: Sendable, Equatable {
        /// Fire `timer` with `generation` after `delay`.
        case schedule(Timer, after: Duration, generation: Int)
        /// Check the server (and prepare a newer version), alongside the app.
        case check
        /// Stop the app, install the prepared version, start it (``swapFinished(_:at:)``).
        case swap
        /// Start the app (``appStarted(pid:at:)`` or ``appStartFailed()``).
        case startApp
        /// Put the previous version back, then start it (``rollbackFinished(succeeded:)``).
        case rollBack(reason: String)
        /// The new version passed its probation: the kept previous version can go.
        case discardPrevious
        /// Start asking whether the new version is ready (``appReady()`` once it is).
        case startHealthChecks
        /// The app missed its watchdog: stop it (SIGTERM, then SIGKILL); its exit is then a
        /// failure like any other (a rollback within the health window, else a restart).
        case stopHungApp
        /// Stop the app, put a kept version back as a person asked, start what is installed then
        /// (``requestedRollbackFinished()``).
        case rollBackAsRequested
        /// Cancel the check running now (it ends with ``CheckResult/cancelled``).
        case cancelCheck
        /// The watch is over, with this exit code.
        case end(exitCode: Int32)
    }

    /// How a check ended.
    enum CheckResult: Sendable, Equatable {
        case upToDate
        /// The newest version was rolled back before: not installed.
        case skippedBad
        /// A newer version is downloaded, extracted and verified: swap to it.
        case prepared
        /// As ``prepared``, outside every install window: it swaps in when one opens, this long
        /// from now (a mandatory release never waits).
        case preparedOutsideWindow(opensIn: Duration)
        /// Updates are inhibited (the inhibit file exists): nothing was checked.
        case inhibited
        case failed(retryAfter: Duration?)
        case cancelled
    }

    /// How a swap ended (the new app's start was reported before, with ``appStarted(pid:at:)``).
    enum SwapResult: Sendable, Equatable {
        /// Installed; `keptPrevious` when the previous version was kept for a rollback.
        case installed(keptPrevious: Bool)
        /// Not installed (rolled back by the install itself); the installed version is started again.
        case failed(retryAfter: Duration?)
    }

    let configuration: WatchConfiguration
    /// A random factor in 0...1 for the check jitter and the backoff (fixed in tests).
    private let random: @Sendable () -> Double

    /// The app's pid while it runs; `nil` while it is down (or being swapped).
    private(set) var appPID: Int32?
    private var lastStart: Instant?
    private var generations: [Timer: Int] = [.check: 0, .restart: 0, .probation: 0, .watchdog: 0, .installWindow: 0]
    private var failedChecks = 0
    private var failedRuns = 0
    /// A new version on probation until then.
    private(set) var probationEnds: Instant?
    private(set) var isChecking = false
    /// The new version on probation has proved it is ready (with a readiness check).
    private(set) var isReady = false
    /// The watch is over (ended by the app's exit, or stopped).
    private(set) var isOver = false
    /// A rollback was asked for while a check ran: it goes ahead once the check has ended.
    private(set) var isRollbackPending = false
    /// A prepared version waits for an install window; checks wait with it.
    private(set) var isWaitingForWindow = false

    init(configuration: WatchConfiguration, random: @escaping @Sendable () -> Double = { .random(in: 0...1) }) {
        self.configuration = configuration
        self.random = random
    }

    // MARK: The app

    /// The app started (at the watch's start, after a restart, a swap or a rollback).
    mutating func appStarted(pid: Int32, at now: Instant) {
        appPID = pid
        lastStart = now
        // A new process: the last one's watchdog is over (this one's starts with its first ping).
        generations[.watchdog, default: 0] += 1
    }

    /// The app just started is a new version still on trial from an earlier watch: its health
    /// window starts again now.
    mutating func trialResumed() -> [Action] {
        guard let lastStart else { return [] }
        return beginProbation(at: lastStart)
    }

    /// A new version's probation starts: its window, the timer that judges it at the window's
    /// end (confirmed then, so that a watch or machine that dies later never undoes a version
    /// that passed), and with a readiness check, the checks.
    private mutating func beginProbation(at start: Instant) -> [Action] {
        probationEnds = start + configuration.healthWindow
        isReady = false
        let judgement = schedule(.probation, after: configuration.healthWindow)
        return configuration.health == nil ? [judgement] : [.startHealthChecks, judgement]
    }

    /// The readiness check passed (as many times in a row as asked).
    mutating func appReady() {
        guard probationEnds != nil else { return }
        isReady = true
    }

    /// The app said it is alive (`WATCHDOG=1`, or `READY=1`, which arms the watchdog): with
    /// `--watchdog`, the next ping is due within that long.
    mutating func appPinged() -> [Action] {
        guard let watchdog = configuration.watchdog, appPID != nil, !isOver else { return [] }
        return [schedule(.watchdog, after: watchdog)]
    }

    /// The app asked for more time to get ready (`EXTEND_TIMEOUT_USEC`): its health window ends
    /// no sooner than `extra` from now.
    mutating func probationExtended(by extra: Duration, at now: Instant) -> [Action] {
        guard let ends = probationEnds, now + extra > ends else { return [] }
        probationEnds = now + extra
        return [schedule(.probation, after: extra)]
    }

    /// The app could not be started: try again later.
    mutating func appStartFailed() -> [Action] {
        failedRuns += 1
        return [scheduleRestart()]
    }

    /// The watch has started the app for the first time: the first check comes after an interval.
    mutating func watchStarted() -> [Action] {
        [schedule(.check, after: nextInterval())]
    }

    /// The app exited on its own (or was stopped by a swap: such exits are of a pid no longer
    /// the app's, and ignored).
    mutating func appExited(pid: Int32, status: TerminationStatus, at now: Instant) -> [Action] {
        guard !isOver, pid == appPID else { return [] }
        appPID = nil
        let ranFor = lastStart.map { now - $0 } ?? .zero
        if let probationEnds, now < probationEnds, !status.isSuccess {
            self.probationEnds = nil
            let what = status.isSignal ? "was \(status)" : "\(status)"
            return [.rollBack(reason: "it \(what) \(Self.describe(ranFor)) after its start")]
        }
        switch configuration.restart {
        case .never:
            return end(status.shellExitCode)
        case .onFailure where status.isSuccess:
            return end(0)
        case .always, .onFailure:
            failedRuns = ranFor > configuration.maxRestartDelay ? 1 : failedRuns + 1
            return [scheduleRestart()]
        }
    }

    /// A rollback ended; on success the previous version starts again.
    mutating func rollbackFinished(succeeded: Bool) -> [Action] {
        guard succeeded else {
            failedRuns += 1
            return [scheduleRestart()]
        }
        failedRuns = 0
        return [.startApp]
    }

    /// A person asked for a kept version back (`autoupdate rollback`, SIGUSR1): now, or once the
    /// check running now is cancelled. A new version on probation is judged by the person.
    mutating func rollbackRequested() -> [Action] {
        guard !isOver, !isRollbackPending else { return [] }
        if isChecking {
            isRollbackPending = true
            return [.cancelCheck]
        }
        return beginRequestedRollback()
    }

    private mutating func beginRequestedRollback() -> [Action] {
        var checkAgain: [Action] = []
        if isWaitingForWindow {
            // The version waiting for its window is dropped (the rollback marks what it replaces
            // bad, not it): the next check decides again.
            isWaitingForWindow = false
            generations[.installWindow, default: 0] += 1
            checkAgain = [schedule(.check, after: nextInterval())]
        }
        probationEnds = nil
        isReady = false
        // The rollback stops the app: that exit is not the app's own, and no restart is due.
        appPID = nil
        generations[.restart, default: 0] += 1
        generations[.probation, default: 0] += 1
        generations[.watchdog, default: 0] += 1
        return [.rollBackAsRequested] + checkAgain
    }

    /// A requested rollback ended, done or refused: what is installed (whole either way) starts.
    mutating func requestedRollbackFinished() -> [Action] {
        guard !isOver else { return [] }
        failedRuns = 0
        return [.startApp]
    }

    // MARK: Timers and signals

    mutating func timerFired(_ timer: Timer, generation: Int, at now: Instant) -> [Action] {
        guard !isOver, generations[timer] == generation else {
            return []  // superseded
        }
        switch timer {
        case .check:
            return checkDue(at: now)
        case .restart:
            return appPID == nil ? [.startApp] : []
        case .watchdog:
            guard appPID != nil else { return [] }
            return [.stopHungApp]
        case .installWindow:
            guard isWaitingForWindow else { return [] }
            isWaitingForWindow = false
            // As after a check that prepared: a pending restart is superseded by the swap.
            generations[.restart, default: 0] += 1
            appPID = nil
            return [.swap]
        case .probation:
            guard probationEnds != nil else { return [] }
            probationEnds = nil
            // Without a readiness check, not having failed within the window is the proof.
            if isReady || configuration.health == nil {
                return [.discardPrevious]
            }
            // The app still runs: the rollback stops it, and that exit is not the app's own.
            appPID = nil
            generations[.restart, default: 0] += 1
            return [.rollBack(reason: "it was not ready within its \(Self.describe(configuration.healthWindow)) health window")]
        }
    }

    /// A check was asked for (SIGHUP).
    mutating func checkRequested(at now: Instant) -> [Action] {
        guard !isOver else { return [] }
        return checkDue(at: now)
    }

    private mutating func checkDue(at now: Instant) -> [Action] {
        guard !isChecking, !isWaitingForWindow else { return [] }
        if let probationEnds {
            // A new version is on probation: the next check comes once its timer has judged it.
            return [schedule(.check, after: max(probationEnds - now, .milliseconds(100)))]
        }
        isChecking = true
        // A check's own timer is superseded by the check, whatever started it.
        generations[.check, default: 0] += 1
        return [.check]
    }

    // MARK: Checks and swaps

    mutating func checkFinished(_ result: CheckResult) -> [Action] {
        isChecking = false
        guard !isOver else { return [] }
        if isRollbackPending {
            // The rollback comes first; whatever the check found, the next one finds again.
            isRollbackPending = false
            return beginRequestedRollback() + [schedule(.check, after: nextInterval())]
        }
        switch result {
        case .upToDate, .skippedBad, .inhibited:
            failedChecks = 0
            return [schedule(.check, after: nextInterval())]
        case .preparedOutsideWindow(let delay):
            failedChecks = 0
            isWaitingForWindow = true
            return [schedule(.installWindow, after: delay)]
        case .prepared:
            failedChecks = 0
            // A pending restart is superseded by the swap, and the old app's exit is asked for.
            generations[.restart, default: 0] += 1
            appPID = nil
            return [.swap]
        case .failed(let retryAfter):
            return [checkFailed(retryAfter: retryAfter)]
        case .cancelled:
            return []
        }
    }

    mutating func swapFinished(_ result: SwapResult, at now: Instant) -> [Action] {
        guard !isOver else { return [] }
        var actions: [Action] = []
        if appPID == nil {
            // Neither the new version nor the old one could be started.
            failedRuns += 1
            actions.append(scheduleRestart())
        }
        switch result {
        case .installed(let keptPrevious):
            if keptPrevious, let lastStart {
                actions += beginProbation(at: lastStart)
            }
            actions.append(schedule(.check, after: nextInterval()))
        case .failed(let retryAfter):
            actions.append(checkFailed(retryAfter: retryAfter))
        }
        return actions
    }

    /// The swap was not made (updates became inhibited while the version waited for its
    /// window): the app runs on as it was (`pid`; `nil` when it has ended meanwhile).
    mutating func swapSkipped(appStillRunning pid: Int32?) -> [Action] {
        guard !isOver else { return [] }
        appPID = pid
        var actions = [schedule(.check, after: nextInterval())]
        if pid == nil {
            actions.append(scheduleRestart())
        }
        return actions
    }

    /// The delay of the check scheduled in `actions`, if one is.
    static func checkDelay(in actions: [Action]) -> Duration? {
        for case .schedule(.check, let delay, _) in actions {
            return delay
        }
        return nil
    }

    // MARK: The end

    /// The watch is stopped from outside (cancelled, SIGTERM): every timer is superseded; the
    /// owner stops the app. A new version still within its health window stays on trial (its
    /// kept version too): the next start decides it.
    mutating func stop() -> [Action] {
        guard !isOver else { return [] }
        isOver = true
        isRollbackPending = false
        isWaitingForWindow = false
        generations[.installWindow, default: 0] += 1
        generations[.check, default: 0] += 1
        generations[.restart, default: 0] += 1
        generations[.probation, default: 0] += 1
        generations[.watchdog, default: 0] += 1
        probationEnds = nil
        return [.end(exitCode: 0)]
    }

    private mutating func end(_ code: Int32) -> [Action] {
        isOver = true
        var actions: [Action] = []
        if probationEnds != nil {
            probationEnds = nil
            actions.append(.discardPrevious)
        }
        return actions + [.end(exitCode: code)]
    }

    // MARK: Timing

    private mutating func schedule(_ timer: Timer, after delay: Duration) -> Action {
        generations[timer, default: 0] += 1
        return .schedule(timer, after: delay, generation: generations[timer, default: 0])
    }

    private mutating func scheduleRestart() -> Action {
        schedule(
            .restart,
            after: exponentialBackoff(
                failure: failedRuns, base: configuration.retryBase, cap: configuration.maxRestartDelay, jitter: 0.5 + random() / 2))
    }

    private mutating func checkFailed(retryAfter: Duration?) -> Action {
        failedChecks += 1
        let backoff = exponentialBackoff(
            failure: failedChecks, base: configuration.retryBase, cap: configuration.interval, jitter: 0.5 + random() / 2)
        return schedule(.check, after: delayHonouringRetryAfter(retryAfter, backoff: backoff, interval: configuration.interval))
    }

    private func nextInterval() -> Duration {
        configuration.interval + configuration.jitter * random()
    }

    static func describe(_ duration: Duration) -> String {
        let tenths = (duration.components.seconds * 10) + duration.components.attoseconds / 100_000_000_000_000_000
        return "\(tenths / 10).\(tenths % 10) s"
    }
}
