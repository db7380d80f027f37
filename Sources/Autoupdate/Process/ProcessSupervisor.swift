#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What to run and how, for a ``ProcessSupervisor``.
public struct ProcessConfiguration: Sendable {
    /// The executable: a binary, or a script with a `#!` line. Not searched in `PATH`.
    public var executable: String
    /// Its arguments (`argv[1...]`; `argv[0]` is the executable).
    public var arguments: [String]
    /// Its whole environment. Default: this process's.
    public var environment: [String: String]
    /// Where it starts; `nil` keeps this process's current directory.
    public var workingDirectory: String?
    /// Between SIGTERM and SIGKILL in ``ProcessSupervisor/terminate(grace:)``, on cancellation,
    /// and for what the child leaves running in its process group when it exits. Default 5 s.
    public var grace: Duration
    /// Makes the child's process group the foreground of this terminal descriptor (usually 0)
    /// while it runs, as a shell does for a job: an interactive child can read the terminal, and
    /// Ctrl-C reaches it directly. `nil` (the default) leaves the terminal alone.
    public var foregroundTerminal: Int32?
    /// Makes this process a child subreaper, so that what the child leaves running outside its
    /// process group (a daemon's `setsid` and double fork) is reparented here and ended with the
    /// child, SIGTERM then SIGKILL after the grace period. Default `false`.
    ///
    /// - Important: This process then reaps every child it did not start through a supervisor:
    ///   set it only in a process that starts children no other way (the `autoupdate` CLI).
    public var adoptsOrphans: Bool

    public init(
        executable: String, arguments: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String? = nil, grace: Duration = .seconds(5), foregroundTerminal: Int32? = nil, adoptsOrphans: Bool = false
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.grace = grace
        self.foregroundTerminal = foregroundTerminal
        self.adoptsOrphans = adoptsOrphans
    }
}

/// Owns one child process at a time: starts it, reports on it, ends it.
///
/// ```swift
/// let supervisor = ProcessSupervisor(ProcessConfiguration(executable: "/opt/myapp/bin/app"))
/// let status = try await supervisor.run()        // start and wait; cancelling ends the child
/// print(status)                                  // "exited with code 0"
///
/// try await supervisor.start()                   // or in the background:
/// if try await supervisor.join(timeout: .seconds(10)) == nil {
///     await supervisor.terminate()               // SIGTERM, then SIGKILL after the grace period
/// }
/// ```
///
/// The child runs in a process group of its own, with stdio inherited, every signal at its
/// default, and no other descriptor of ours (but the app folder's run lock, when it holds one).
/// Signals go to the whole group, so a shell script's children end with it; what the child
/// leaves running in its group when it exits gets SIGTERM, then SIGKILL after the grace period.
/// A process that leaves the group (a daemon's `setsid`) is beyond reach unless
/// ``ProcessConfiguration/adoptsOrphans`` is set. The child is reaped by a thread of its own: no
/// zombie, no busy wait.
public actor ProcessSupervisor {
    public nonisolated let configuration: ProcessConfiguration
    private let logger: Logger
    private var child: SpawnedChild?
    private var starting = false

    public init(_ configuration: ProcessConfiguration, logger: Logger = Logger(label: "autoupdate.process")) {
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        // Nobody can end it any more: do it now, so that dropping the supervisor leaves no orphan.
        if let child, child.status == nil {
            Self.end(child, grace: configuration.grace)
        }
    }

    /// The pid of the current or last child, `nil` before the first start.
    public var pid: Int32? { child?.pid }

    /// Whether a child has been started and not yet reaped.
    public var isAlive: Bool { child.map { $0.status == nil } ?? false }

    /// Whether the child's own code runs: the exec succeeded (``start()`` returns only after it
    /// has) and the child has not ended.
    public var codeRunning: Bool { isAlive }

    /// How the last child ended; `nil` while it runs or before the first start.
    public var exitStatus: TerminationStatus? { child?.status }

    /// Starts the child in the background.
    ///
    /// - Returns: Its pid.
    /// - Throws: ``AutoupdateError`` `.processRunning` when a child is still alive; `.spawn` when
    ///   the executable cannot be started (missing, not executable, not a program), naming it.
    @discardableResult
    public func start() async throws -> Int32 {
        try await start(holding: nil, onExit: { _, _ in })
    }

    /// ``start()``, keeping `lock` until the child and its group are gone, and calling `onExit`
    /// with its pid and status (on the reaper thread) once they are.
    @discardableResult
    func start(holding lock: FileLock?, onExit: @escaping @Sendable (Int32, TerminationStatus) -> Void) async throws -> Int32 {
        if let child, child.status == nil {
            throw AutoupdateError.alreadyRunning(configuration.executable, pid: child.pid)
        }
        // The spawn may wait (ETXTBSY); a second start meanwhile must not spawn a second child.
        guard !starting else {
            throw AutoupdateError(.processRunning, "\(quoted(configuration.executable)) is being started")
        }
        starting = true
        defer { starting = false }
        let logger = logger
        let executable = configuration.executable
        if configuration.adoptsOrphans {
            Orphans.adopt()
        }
        let spawned = try await SpawnedChild.spawn(
            executable: configuration.executable, arguments: configuration.arguments,
            environment: configuration.environment, workingDirectory: configuration.workingDirectory,
            terminal: configuration.foregroundTerminal, grace: configuration.grace, holding: lock,
            adoptsOrphans: configuration.adoptsOrphans,
            onExit: { pid, status in
                logger.info("child ended", metadata: ["process.pid": "\(pid)", "process.status": "\(status)"])
                onExit(pid, status)
            })
        child = spawned
        logger.info("child started", metadata: ["process.executable": "\(executable)", "process.pid": "\(spawned.pid)"])
        return spawned.pid
    }

    /// Starts the child and waits for its end.
    ///
    /// Cancelling the calling task ends the child (SIGTERM, SIGKILL after the grace period) and
    /// throws `CancellationError` once it is gone.
    public func run() async throws -> TerminationStatus {
        try await start()
        // A child exists now; join without a timeout returns only its status.
        return try await join() ?? .signaled(SIGKILL)
    }

    /// Waits for the child to end.
    ///
    /// - Parameter timeout: How long to wait at most; `nil` waits as long as it takes.
    /// - Returns: How it ended; `nil` when the timeout passed first, or when there is no child.
    /// - Throws: `CancellationError` when the calling task was cancelled: the child was then
    ///   ended (SIGTERM, SIGKILL after the grace period) and is gone.
    public func join(timeout: Duration? = nil) async throws -> TerminationStatus? {
        guard let child else { return nil }
        let grace = configuration.grace
        let status = await withTaskCancellationHandler {
            if let timeout {
                await child.exitStatus(within: timeout)
            } else {
                await child.waitForExit()
            }
        } onCancel: {
            Self.end(child, grace: grace)
        }
        if Task.isCancelled {
            Self.end(child, grace: grace)
            _ = await child.waitForExit()
            throw CancellationError()
        }
        return status
    }

    /// Ends the child: SIGTERM to its process group, then SIGKILL once `grace` has passed.
    ///
    /// - Parameter grace: Overrides the configured grace period.
    /// - Returns: Whether there was a live child to end (the seed's `process_terminate`). Once
    ///   it returns, the child is gone.
    @discardableResult
    public func terminate(grace: Duration? = nil) async -> Bool {
        await stop(with: SIGTERM, grace: grace ?? configuration.grace)
    }

    /// Ends the child with `signal` (SIGINT, SIGTERM, …) to its process group, then SIGKILL once
    /// `grace` has passed.
    ///
    /// - Returns: Whether there was a live child to end.
    @discardableResult
    public func stop(with signal: Int32, grace: Duration) async -> Bool {
        guard let child, child.signal(signal) else { return false }
        // A clean-up: the grace period holds even when the calling task is being cancelled.
        if await Task.detached(operation: { await child.exitStatus(within: grace) }).value == nil {
            logger.attention(
                "child ignored the signal for the grace period; killing it",
                metadata: [
                    "process.pid": "\(child.pid)", "process.signal": "\(signal)", "process.grace": "\(grace)",
                ])
            child.signal(SIGKILL)
            _ = await child.waitForExit()
        }
        return true
    }

    /// Sends `signal` to the child's process group (SIGHUP to reload, …).
    ///
    /// - Returns: Whether there was a live child to receive it.
    @discardableResult
    public func send(_ signal: Int32) -> Bool {
        child?.signal(signal) ?? false
    }

    /// SIGTERM now, SIGKILL after `grace` unless it has ended; returns at once.
    private static func end(_ child: SpawnedChild, grace: Duration) {
        guard child.signal(SIGTERM) else { return }
        Task.detached {
            if await child.exitStatus(within: grace) == nil {
                child.signal(SIGKILL)
            }
        }
    }
}
