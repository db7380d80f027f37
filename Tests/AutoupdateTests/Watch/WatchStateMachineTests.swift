@testable import Autoupdate
import Testing

/// Every rule of the watch, without processes or a server: each scenario feeds the machine what
/// happened, at fixed times, and checks what it decides. (The same rules with real children and
/// a real server: `WatcherTests`, `WatchCommandTests`.)
@Suite("Watch state machine")
struct WatchStateMachineTests {
    typealias Machine = WatchStateMachine
    typealias Action = WatchStateMachine.Action

    enum Step: Sendable {
        case started(pid: Int32, at: Double)
        case startFailed(expect: [Action])
        case watchStarted(expect: [Action])
        case exited(pid: Int32, WatchStatus, at: Double, expect: [Action])
        case timer(Machine.Timer, generation: Int, at: Double, expect: [Action])
        case checkNow(at: Double, expect: [Action])
        case checkFinished(Machine.CheckResult, expect: [Action])
        case swapFinished(Machine.SwapResult, at: Double, expect: [Action])
        case rollbackFinished(succeeded: Bool, expect: [Action])
        case stop(expect: [Action])
        /// The readiness check passed.
        case ready
        case pinged(expect: [Action])
        case extended(seconds: Double, at: Double, expect: [Action])
        case trialResumed(expect: [Action])
        /// `autoupdate rollback` asked the watch.
        case rollbackRequested(expect: [Action])
        case requestedRollbackFinished(expect: [Action])
        case swapSkipped(pid: Int32?, expect: [Action])
    }

    /// `TerminationStatus` as a Sendable test value.
    enum WatchStatus: Sendable {
        case exited(Int32)
        case signaled(Int32)

        var status: TerminationStatus {
            switch self {
            case .exited(let code): .exited(code)
            case .signaled(let number): .signaled(number)
            }
        }
    }

    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        let restart: WatchConfiguration.RestartPolicy
        /// With a readiness check (`--health-cmd`).
        let health: Bool
        /// With a 10 s watchdog.
        let watchdog: Bool
        let steps: [Step]
        var testDescription: String { name }

        init(
            _ name: String, restart: WatchConfiguration.RestartPolicy = .always, health: Bool = false, watchdog: Bool = false,
            _ steps: [Step]
        ) {
            self.name = name
            self.restart = restart
            self.health = health
            self.watchdog = watchdog
            self.steps = steps
        }
    }

    /// interval 100 s, jitter 10 s (the random factor is fixed at 0.5: +5 s), health window 30 s,
    /// backoff from 1 s (× 0.75 jitter) up to 8 s for restarts and the interval for checks.
    static let configuration = WatchConfiguration(
        interval: .seconds(100), jitter: .seconds(10), grace: .seconds(1), restart: .always, healthWindow: .seconds(30),
        retryBase: .seconds(1), maxRestartDelay: .seconds(8))

    static let scenarios: [Scenario] = [
        Scenario(
            "outside the install windows a prepared version waits (checks too) and swaps when one opens",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(
                    .preparedOutsideWindow(opensIn: .seconds(3600)),
                    expect: [.schedule(.installWindow, after: .seconds(3600), generation: 1)]),
                .checkNow(at: 2, expect: []),
                .timer(.check, generation: 1, at: 100, expect: []),
                // The app's own restarts go on meanwhile.
                .exited(pid: 10, .exited(1), at: 200, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .timer(.restart, generation: 1, at: 201, expect: [.startApp]),
                .started(pid: 11, at: 201),
                .timer(.installWindow, generation: 1, at: 3601, expect: [.swap]),
                .timer(.installWindow, generation: 1, at: 3602, expect: []),
                .started(pid: 20, at: 3602),
                .swapFinished(
                    .installed(keptPrevious: true), at: 3602,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
            ]),
        Scenario(
            "inhibited: nothing checked, the next check after an interval; inhibited at the window: the app runs on",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.inhibited, expect: [.schedule(.check, after: .seconds(105), generation: 2)]),
                .timer(.check, generation: 2, at: 106, expect: [.check]),
                .checkFinished(
                    .preparedOutsideWindow(opensIn: .seconds(60)), expect: [.schedule(.installWindow, after: .seconds(60), generation: 1)]),
                .timer(.installWindow, generation: 1, at: 166, expect: [.swap]),
                .swapSkipped(pid: 10, expect: [.schedule(.check, after: .seconds(105), generation: 4)]),
                .exited(pid: 10, .exited(1), at: 170, expect: [.schedule(.restart, after: .milliseconds(750), generation: 2)]),
            ]),
        Scenario(
            "a rollback asked for while a version waits for its window drops it and checks again later",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(
                    .preparedOutsideWindow(opensIn: .seconds(60)), expect: [.schedule(.installWindow, after: .seconds(60), generation: 1)]),
                .rollbackRequested(expect: [.rollBackAsRequested, .schedule(.check, after: .seconds(105), generation: 2)]),
                .timer(.installWindow, generation: 1, at: 61, expect: []),
                .requestedRollbackFinished(expect: [.startApp]),
            ]),
        Scenario(
            "a rollback asked for stops the app (its exit is not a crash) and ends a probation; what is installed then starts",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .rollbackRequested(expect: [.rollBackAsRequested]),
                .exited(pid: 20, .signaled(15), at: 3, expect: []),
                .requestedRollbackFinished(expect: [.startApp]),
                .started(pid: 30, at: 4),
                .timer(.probation, generation: 1, at: 32, expect: []),
                // The check timer stands: checks go on as before.
                .timer(.check, generation: 2, at: 107, expect: [.check]),
            ]),
        Scenario(
            "a rollback asked for during a check cancels the check and goes first; a second ask meanwhile adds nothing",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .rollbackRequested(expect: [.cancelCheck]),
                .rollbackRequested(expect: []),
                .checkFinished(.prepared, expect: [.rollBackAsRequested, .schedule(.check, after: .seconds(105), generation: 2)]),
                .exited(pid: 10, .signaled(15), at: 2, expect: []),
                .requestedRollbackFinished(expect: [.startApp]),
                .stop(expect: [.end(exitCode: 0)]),
                .rollbackRequested(expect: []),
                .requestedRollbackFinished(expect: []),
            ]),
        Scenario(
            "--watchdog: each ping moves the deadline; a missed one stops the app as hung; a new process starts a new watchdog",
            watchdog: true,
            [
                .started(pid: 10, at: 0),
                .pinged(expect: [.schedule(.watchdog, after: .seconds(10), generation: 2)]),
                .pinged(expect: [.schedule(.watchdog, after: .seconds(10), generation: 3)]),
                .timer(.watchdog, generation: 2, at: 10, expect: []),
                .timer(.watchdog, generation: 3, at: 12, expect: [.stopHungApp]),
                .exited(pid: 10, .signaled(15), at: 13, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .started(pid: 11, at: 14),
                .timer(.watchdog, generation: 3, at: 20, expect: []),
            ]),
        Scenario(
            "EXTEND_TIMEOUT_USEC pushes a health window's end out, never in",
            health: true,
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .startHealthChecks, .schedule(.probation, after: .seconds(30), generation: 1),
                        .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .extended(seconds: 5, at: 10, expect: []),
                .extended(seconds: 40, at: 10, expect: [.schedule(.probation, after: .seconds(40), generation: 2)]),
                .timer(.probation, generation: 1, at: 32, expect: []),
                .ready,
                .timer(.probation, generation: 2, at: 50, expect: [.discardPrevious]),
            ]),
        Scenario(
            "with a readiness check, a new version ready within its window is confirmed when the window ends",
            health: true,
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .startHealthChecks, .schedule(.probation, after: .seconds(30), generation: 1),
                        .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                // A check due within the window waits for the window's judgement.
                .timer(.check, generation: 2, at: 20, expect: [.schedule(.check, after: .seconds(12), generation: 3)]),
                .ready,
                .timer(.probation, generation: 1, at: 32, expect: [.discardPrevious]),
                .timer(.check, generation: 3, at: 32, expect: [.check]),
            ]),
        Scenario(
            "not ready by the window's end: rolled back (the rollback stops the running version; its exit is not the app's own)",
            health: true,
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .startHealthChecks, .schedule(.probation, after: .seconds(30), generation: 1),
                        .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .timer(.probation, generation: 1, at: 32, expect: [.rollBack(reason: "it was not ready within its 30.0 s health window")]),
                .exited(pid: 20, .signaled(15), at: 32, expect: []),
                .ready,
                .rollbackFinished(succeeded: true, expect: [.startApp]),
            ]),
        Scenario(
            "ready, confirmed, then crashing after its window: restarted, not rolled back",
            health: true,
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .startHealthChecks, .schedule(.probation, after: .seconds(30), generation: 1),
                        .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .ready,
                .timer(.probation, generation: 1, at: 32, expect: [.discardPrevious]),
                .exited(pid: 20, .exited(1), at: 40, expect: [.schedule(.restart, after: .milliseconds(750), generation: 2)]),
            ]),
        Scenario(
            "a trial resumed by a new watch gets a whole window again, and its readiness checks",
            health: true,
            [
                .started(pid: 30, at: 0),
                .trialResumed(expect: [.startHealthChecks, .schedule(.probation, after: .seconds(30), generation: 1)]),
                .exited(pid: 30, .exited(1), at: 5, expect: [.rollBack(reason: "it exited with code 1 5.0 s after its start")]),
                .timer(.probation, generation: 1, at: 30, expect: []),
            ]),
        Scenario(
            "the first check comes after an interval plus jitter; a superseded timer is ignored",
            [
                .started(pid: 10, at: 0),
                .watchStarted(expect: [.schedule(.check, after: .seconds(105), generation: 1)]),
                .checkNow(at: 50, expect: [.check]),
                .timer(.check, generation: 1, at: 105, expect: []),
                .checkFinished(.upToDate, expect: [.schedule(.check, after: .seconds(105), generation: 3)]),
                .timer(.check, generation: 3, at: 155, expect: [.check]),
            ]),
        Scenario(
            "no second check while one runs",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkNow(at: 2, expect: []),
                .checkFinished(.skippedBad, expect: [.schedule(.check, after: .seconds(105), generation: 2)]),
            ]),
        Scenario(
            "failed checks back off up to the interval, honouring Retry-After within bounds; success resets",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.failed(retryAfter: nil), expect: [.schedule(.check, after: .milliseconds(750), generation: 2)]),
                .timer(.check, generation: 2, at: 2, expect: [.check]),
                .checkFinished(.failed(retryAfter: nil), expect: [.schedule(.check, after: .milliseconds(1500), generation: 4)]),
                .timer(.check, generation: 4, at: 4, expect: [.check]),
                .checkFinished(.failed(retryAfter: .seconds(60)), expect: [.schedule(.check, after: .seconds(60), generation: 6)]),
                .timer(.check, generation: 6, at: 64, expect: [.check]),
                // Asking for a day is capped at 4 intervals.
                .checkFinished(.failed(retryAfter: .seconds(86_400)), expect: [.schedule(.check, after: .seconds(400), generation: 8)]),
                .timer(.check, generation: 8, at: 464, expect: [.check]),
                .checkFinished(.upToDate, expect: [.schedule(.check, after: .seconds(105), generation: 10)]),
                .checkNow(at: 470, expect: [.check]),
                .checkFinished(.failed(retryAfter: nil), expect: [.schedule(.check, after: .milliseconds(750), generation: 12)]),
            ]),
        Scenario(
            "restart always: with backoff that grows while runs are short and resets after a long run",
            [
                .started(pid: 10, at: 0),
                .exited(pid: 10, .exited(1), at: 1, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .timer(.restart, generation: 1, at: 2, expect: [.startApp]),
                .started(pid: 11, at: 2),
                .exited(pid: 11, .signaled(9), at: 3, expect: [.schedule(.restart, after: .milliseconds(1500), generation: 2)]),
                .timer(.restart, generation: 2, at: 5, expect: [.startApp]),
                .started(pid: 12, at: 5),
                .exited(pid: 12, .exited(0), at: 6, expect: [.schedule(.restart, after: .seconds(3), generation: 3)]),
                .timer(.restart, generation: 3, at: 9, expect: [.startApp]),
                .started(pid: 13, at: 9),
                .exited(pid: 13, .exited(1), at: 100, expect: [.schedule(.restart, after: .milliseconds(750), generation: 4)]),
            ]),
        Scenario(
            "a start that fails is tried again later",
            [
                .started(pid: 10, at: 0),
                .exited(pid: 10, .exited(1), at: 1, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .timer(.restart, generation: 1, at: 2, expect: [.startApp]),
                .startFailed(expect: [.schedule(.restart, after: .milliseconds(1500), generation: 2)]),
            ]),
        Scenario(
            "restart never: the app's exit ends the watch with its status", restart: .never,
            [
                .started(pid: 10, at: 0),
                .exited(pid: 10, .signaled(15), at: 1, expect: [.end(exitCode: 143)]),
                .checkNow(at: 2, expect: []),
            ]),
        Scenario(
            "restart on-failure: a clean exit ends the watch, a failure restarts", restart: .onFailure,
            [
                .started(pid: 10, at: 0),
                .exited(pid: 10, .exited(2), at: 1, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .timer(.restart, generation: 1, at: 2, expect: [.startApp]),
                .started(pid: 11, at: 2),
                .exited(pid: 11, .exited(0), at: 3, expect: [.end(exitCode: 0)]),
            ]),
        Scenario(
            "a swap supersedes a pending restart and ignores the old app's exit; the new version is on probation",
            [
                .started(pid: 10, at: 0),
                .exited(pid: 10, .exited(1), at: 1, expect: [.schedule(.restart, after: .milliseconds(750), generation: 1)]),
                .checkNow(at: 1.5, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .timer(.restart, generation: 1, at: 2, expect: []),
                .started(pid: 20, at: 3),
                .swapFinished(
                    .installed(keptPrevious: true), at: 3,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                // On probation, a check waits until the window is over.
                .checkNow(at: 10, expect: [.schedule(.check, after: .seconds(23), generation: 3)]),
                // Confirmed at the window's end by its own timer (not by the next check: a watch
                // killed in between must not undo a version that passed).
                .timer(.probation, generation: 1, at: 33, expect: [.discardPrevious]),
                .timer(.check, generation: 3, at: 33.1, expect: [.check]),
            ]),
        Scenario(
            "the old app's exit during a swap is not a crash",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .exited(pid: 10, .signaled(15), at: 2, expect: []),
                .swapFinished(.installed(keptPrevious: false), at: 2, expect: [.schedule(.check, after: .seconds(105), generation: 2)]),
            ]),
        Scenario(
            "a new version failing within its health window is rolled back, then the previous one starts",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .exited(pid: 20, .exited(3), at: 2.5, expect: [.rollBack(reason: "it exited with code 3 0.5 s after its start")]),
                .rollbackFinished(succeeded: true, expect: [.startApp]),
                .started(pid: 30, at: 3),
                // The previous version is not on probation: its exits restart it (the swap superseded restart 1).
                .exited(pid: 30, .exited(1), at: 4, expect: [.schedule(.restart, after: .milliseconds(750), generation: 2)]),
            ]),
        Scenario(
            "a clean exit or a late failure is no reason to roll back",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .exited(pid: 20, .exited(0), at: 3, expect: [.schedule(.restart, after: .milliseconds(750), generation: 2)]),
                .timer(.restart, generation: 2, at: 4, expect: [.startApp]),
                .started(pid: 21, at: 4),
                .exited(pid: 21, .exited(1), at: 40, expect: [.schedule(.restart, after: .milliseconds(750), generation: 3)]),
            ]),
        Scenario(
            "a failed rollback restarts what is installed with backoff",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .exited(
                    pid: 20, .signaled(11), at: 3, expect: [.rollBack(reason: "it was killed by signal 11 (SIGSEGV) 1.0 s after its start")]
                ),
                .rollbackFinished(succeeded: false, expect: [.schedule(.restart, after: .milliseconds(750), generation: 2)]),
            ]),
        Scenario(
            "a failed install backs the checks off; an app that could not be started again is restarted",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .swapFinished(
                    .failed(retryAfter: nil), at: 2,
                    expect: [
                        .schedule(.restart, after: .milliseconds(750), generation: 2),
                        .schedule(.check, after: .milliseconds(750), generation: 2),
                    ]),
            ]),
        Scenario(
            "stopping supersedes every timer, and leaves a new version on trial for the next start to decide",
            [
                .started(pid: 10, at: 0),
                .checkNow(at: 1, expect: [.check]),
                .checkFinished(.prepared, expect: [.swap]),
                .started(pid: 20, at: 2),
                .swapFinished(
                    .installed(keptPrevious: true), at: 2,
                    expect: [
                        .schedule(.probation, after: .seconds(30), generation: 1), .schedule(.check, after: .seconds(105), generation: 2),
                    ]),
                .stop(expect: [.end(exitCode: 0)]),
                .stop(expect: []),
                .timer(.check, generation: 2, at: 200, expect: []),
                .exited(pid: 20, .signaled(15), at: 3, expect: []),
                .checkFinished(.upToDate, expect: []),
            ]),
    ]

    @Test("rules", arguments: scenarios)
    func rules(_ scenario: Scenario) {
        var configuration = Self.configuration
        configuration.restart = scenario.restart
        configuration.health = scenario.health ? HealthCheck(command: "test -e ready") : nil
        configuration.watchdog = scenario.watchdog ? .seconds(10) : nil
        var machine = Machine(configuration: configuration, random: { 0.5 })
        let base = ContinuousClock.now
        func at(_ seconds: Double) -> ContinuousClock.Instant { base + .seconds(seconds) }
        for (index, step) in scenario.steps.enumerated() {
            let label = Comment(rawValue: "step \(index + 1)")
            switch step {
            case .started(let pid, let time):
                machine.appStarted(pid: pid, at: at(time))
            case .startFailed(let expected):
                #expect(machine.appStartFailed() == expected, label)
            case .watchStarted(let expected):
                #expect(machine.watchStarted() == expected, label)
            case .exited(let pid, let status, let time, let expected):
                #expect(machine.appExited(pid: pid, status: status.status, at: at(time)) == expected, label)
            case .timer(let timer, let generation, let time, let expected):
                #expect(machine.timerFired(timer, generation: generation, at: at(time)) == expected, label)
            case .checkNow(let time, let expected):
                #expect(machine.checkRequested(at: at(time)) == expected, label)
            case .checkFinished(let result, let expected):
                #expect(machine.checkFinished(result) == expected, label)
            case .swapFinished(let result, let time, let expected):
                #expect(machine.swapFinished(result, at: at(time)) == expected, label)
            case .rollbackFinished(let succeeded, let expected):
                #expect(machine.rollbackFinished(succeeded: succeeded) == expected, label)
            case .stop(let expected):
                #expect(machine.stop() == expected, label)
            case .ready:
                machine.appReady()
            case .pinged(let expected):
                #expect(machine.appPinged() == expected, label)
            case .extended(let seconds, let time, let expected):
                #expect(machine.probationExtended(by: .seconds(seconds), at: at(time)) == expected, label)
            case .trialResumed(let expected):
                #expect(machine.trialResumed() == expected, label)
            case .rollbackRequested(let expected):
                #expect(machine.rollbackRequested() == expected, label)
            case .requestedRollbackFinished(let expected):
                #expect(machine.requestedRollbackFinished() == expected, label)
            case .swapSkipped(let pid, let expected):
                #expect(machine.swapSkipped(appStillRunning: pid) == expected, label)
            }
        }
    }
}
