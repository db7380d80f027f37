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

/// What a ``Launcher`` is doing, for progress displays and logs.
public enum LauncherEvent: Sendable {
    /// A step of ``Launcher/checkNew()`` or ``Launcher/updateCode()``.
    case update(UpdateEvent)
    /// The app's process started.
    case started(pid: Int32)
    /// The app's process ended.
    case exited(pid: Int32, status: TerminationStatus)
}

/// The seed's `Launcher`: keeps an app up to date and runs it as a supervised child.
///
/// ```swift
/// let launcher = try Launcher(filepath: "bin/app", url: "https://example.com/app/",
///                             newfiles: "project.zip", logLevel: .warning,
///                             args: ["--flag"], kwargs: ["mode": "fast"])
/// if try await launcher.checkNew() { _ = try await launcher.updateCode() }
/// let code = try await launcher.run()          // foreground: the exit code
/// ```
///
/// The app folder (the current directory unless `folder` says otherwise) keeps the seed's layout:
/// `version.txt`, `filelist.txt`, `version_check.log`, `.queue`, `.pyautodownloads`. The app runs
/// in it, with its `args` as arguments and the seed's variables in its environment (see
/// ``UpdateContext``). While it runs it holds the folder's run lock, so no install swaps files
/// under it: ``updateCode()`` returns `false` then, as in the seed.
public final class Launcher: Sendable {
    /// The app's executable, absolute; always inside ``folder``.
    public let filepath: String
    /// Where updates come from (`version.txt` and the archive).
    public let url: UpdateURL
    /// The archive's name on the server.
    public let newfiles: ArchiveName
    /// The level of the launcher's logger, also passed to the app.
    public let logLevel: Logger.Level
    /// The app's arguments.
    public let args: [String]
    /// Passed to the app as `AUTOUPDATE_KWARGS`, a JSON object.
    public let kwargs: [String: String]
    /// The app folder.
    public let folder: AppFolder
    /// Progress of updates and the app's starts and ends. Buffers the newest 256 events when
    /// nobody reads it.
    public let events: AsyncStream<LauncherEvent>

    private let eventSink: AsyncStream<LauncherEvent>.Continuation
    private let updater: Updater
    private let supervisor: ProcessSupervisor
    private let logger: Logger

    /// - Parameters:
    ///   - filepath: The executable to run (a binary, or a script with a `#!` line), relative to
    ///     the app folder or absolute inside it.
    ///   - url: The HTTPS folder with `version.txt` and the archive (`http://` is upgraded; query
    ///     and fragment are dropped).
    ///   - newfiles: The archive's name: `.zip`, `.tar.gz`/`.tgz`, `.tar.bz2`/`.tbz2`, `.tar`.
    ///   - logLevel: The launcher's log level, also given to the app.
    ///   - args: The app's arguments.
    ///   - kwargs: Given to the app as a JSON object in `AUTOUPDATE_KWARGS`.
    ///   - folder: The app folder (default: the current directory, as in the seed).
    ///   - download: Trust anchors, timeouts and caps for every request.
    ///   - extraction: Caps on an update's extracted tree.
    ///   - trust: The publisher's keys every archive must be signed by, and freshness.
    ///   - checkTimeout: The bound on one check of the server, however it behaves (a silent
    ///     server must not hold back the app's start for long).
    ///   - channel: The release channel to follow, when the server has a release index.
    ///   - pin: Releases outside this PEP 440 specifier set are ignored.
    ///   - differential: When an update fetches only what changed.
    ///   - mirrors: Other servers with the same update folder, tried in order when the one
    ///     before fails (see ``UpdaterConfiguration/mirrors``).
    ///   - grace: How long the app gets between SIGTERM and SIGKILL when it is terminated.
    ///   - foregroundTerminal: A terminal descriptor (0) to hand to the app while it runs, for an
    ///     interactive app (see ``ProcessConfiguration/foregroundTerminal``).
    ///   - adoptsOrphans: End what the app leaves running outside its process group too (see
    ///     ``ProcessConfiguration/adoptsOrphans``).
    ///   - logger: Where the launcher logs (its level is set to `logLevel`).
    /// - Throws: ``AutoupdateError`` for a URL that is not HTTPS, an archive name of no known
    ///   format, or a filepath outside the folder.
    public init(
        filepath: String, url: String, newfiles: String = "project.zip", logLevel: Logger.Level = .warning,
        args: [String] = [], kwargs: [String: String] = [:], folder: AppFolder = AppFolder(),
        download: DownloadConfiguration = DownloadConfiguration(), extraction: ExtractionConfiguration = ExtractionConfiguration(),
        trust: TrustPolicy = TrustPolicy(), checkTimeout: Duration = UpdaterConfiguration.defaultCheckTimeout,
        channel: String = "stable", pin: VersionSpecifierSet? = nil, differential: DifferentialUpdates = .automatic,
        mirrors: [UpdateURL] = [], grace: Duration = .seconds(5),
        foregroundTerminal: Int32? = nil, adoptsOrphans: Bool = false, logger: Logger = Logger(label: "autoupdate")
    ) throws {
        self.folder = folder
        self.filepath = try folder.resolve(filepath)
        self.url = try UpdateURL(source: url)
        self.newfiles = try ArchiveName(newfiles)
        self.logLevel = logLevel
        self.args = args
        self.kwargs = kwargs
        var logger = logger
        logger.logLevel = logLevel
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(of: LauncherEvent.self, bufferingPolicy: .bufferingNewest(256))
        updater = Updater(
            folder: folder, url: self.url,
            configuration: UpdaterConfiguration(
                archive: self.newfiles, download: download, extraction: extraction, trust: trust, checkTimeout: checkTimeout,
                channel: channel, pin: pin, differential: differential, mirrors: mirrors),
            logger: logger)
        let context = UpdateContext(
            filepath: self.filepath, url: self.url, newfiles: self.newfiles, parentPID: getpid(), folder: folder,
            logLevel: logLevel, kwargs: kwargs, caFile: download.caFile, trust: trust, channel: channel, pin: pin)
        supervisor = ProcessSupervisor(
            context.appConfiguration(arguments: args, grace: grace, foregroundTerminal: foregroundTerminal, adoptsOrphans: adoptsOrphans),
            logger: logger)
    }

    deinit {
        eventSink.finish()
    }

    // MARK: The layout

    /// The installed version's file (`version.txt`).
    public var versionDoc: String { folder.layout.versionDoc }
    /// The log of every check (`version_check.log`).
    public var versionCheckLog: String { folder.layout.versionCheckLog }
    /// The list of installed files (`filelist.txt`).
    public var fileList: String { folder.layout.fileList }
    /// The update folder (`.pyautodownloads`).
    public var updateDir: String { folder.layout.updateDir }
    /// The queued version's file (`.queue`).
    public var queueUpdate: String { folder.layout.queueUpdate }

    /// Whether `version.txt` exists and holds a valid PEP 440 version; a corrupted one is logged
    /// as a warning (the seed's `CorruptedFileWarning`).
    ///
    /// ```swift
    /// if !launcher.versionDocValidator() { print("version.txt needs repair") }
    /// ```
    public func versionDocValidator() -> Bool {
        switch folder.readVersionDoc() {
        case .valid: return true
        case .missing:
            logger.warning("\(versionDoc) is missing", metadata: ["app.folder": "\(folder.path)"])
            return false
        case .corrupted(let reason):
            logger.warning("\(versionDoc) is corrupted: \(reason)", metadata: ["app.folder": "\(folder.path)"])
            return false
        }
    }

    /// Whether `version_check.log` is empty or made of the seed's lines (`Old X|New Y|Time T`,
    /// `Old X|Up to date|Time T`, `Old X|Server invalid|Time T`); a missing log counts as empty.
    public func versionLogValidator() -> Bool {
        switch folder.readCheckLog() {
        case .valid, .missing: return true
        case .corrupted(let reason):
            logger.warning("\(versionCheckLog) is corrupted: \(reason)", metadata: ["app.folder": "\(folder.path)"])
            return false
        }
    }

    // MARK: Updates

    /// The seed's `check_new`: whether the server has a newer version than the installed one.
    ///
    /// A newer version is queued in `.queue`; every check is logged in `version_check.log`. A
    /// server whose `version.txt` is not a version gives `false` and a warning, never an error.
    ///
    /// ```swift
    /// if try await launcher.checkNew() { print("an update is waiting") }
    /// ```
    /// - Throws: ``AutoupdateError`` when the server cannot be reached or answers with an error.
    public func checkNew() async throws -> Bool {
        try await updater.checkNew()
    }

    /// Checks with the server, in detail: the candidate, and whether the release index makes it
    /// mandatory (see ``ReleasePolicy``).
    public func checkServer() async throws -> VersionChecker.Result {
        try await updater.checkServer()
    }

    /// The seed's `update_code`: checks, downloads, extracts and installs a newer version.
    ///
    /// ```swift
    /// if try await launcher.updateCode() { print("updated") }
    /// ```
    /// - Returns: `true` when a new version was installed; `false` when there was none, when the
    ///   server's version is invalid, or when the app runs (here or in another launcher: an
    ///   install never swaps files under a running app; the next update installs once it stopped).
    /// - Throws: ``AutoupdateError`` when the download, the archive or the install failed; the
    ///   installed app is then as it was.
    public func updateCode() async throws -> Bool {
        if await supervisor.isAlive {
            let pid = await supervisor.pid ?? 0
            logger.attention("not updating: the app is running", metadata: ["process.pid": "\(pid)"])
            return false
        }
        let sink = eventSink
        do {
            let outcome = try await updater.update { sink.yield(.update($0)) }
            if case .updated = outcome { return true }
            return false
        } catch let error as AutoupdateError where error.code == .processRunning {
            logger.attention("not updating: \(error.message)")
            return false
        }
    }

    // MARK: The app's process

    /// Runs the app.
    ///
    /// An install that was interrupted (a crash) is finished or undone first, so the app never
    /// starts from a half-swapped folder.
    ///
    /// ```swift
    /// let code = try await launcher.run()             // waits; cancelling the task ends the app
    /// try await launcher.run(background: true)        // returns once the app has started
    /// ```
    /// - Parameter background: `false` waits for the app's end; `true` returns once it started.
    /// - Returns: In the foreground, the exit code (−N after death by signal N); `nil` in the
    ///   background.
    /// - Throws: ``AutoupdateError`` `.processRunning` while the app runs; `.spawn` when it cannot
    ///   be started; `.locked` while an update is being installed. `CancellationError` when the
    ///   calling task was cancelled (the app was then ended, SIGTERM then SIGKILL after the grace).
    @discardableResult
    public func run(background: Bool = false) async throws -> Int32? {
        if await supervisor.isAlive {
            let pid = await supervisor.pid ?? 0
            throw AutoupdateError.alreadyRunning(filepath, pid: pid)
        }
        if updater.hasInterruptedInstall {
            let outcome = try await updater.recoverForStart()
            eventSink.yield(.update(.recovered(outcome)))
        }
        // A new version on trial (installed by a watch that did not live to confirm it): another
        // start while it has some left, else the previous version back, before anything starts.
        let trial: TrialResolution
        do {
            trial = try await updater.resolveTrialForStart()
        } catch {
            // Whatever is installed is whole (every step is journaled): it starts.
            logger.attention("cannot decide the trial; starting what is installed", metadata: ["error": "\(error)"])
            trial = .none
        }
        let lock = try await folder.waitingBriefly(for: folder.lockForRunning)
        let sink = eventSink
        let pid = try await supervisor.start(
            holding: lock,
            onExit: { pid, status in
                sink.yield(.exited(pid: pid, status: status))
            })
        eventSink.yield(.started(pid: pid))
        guard !background else { return nil }
        let code = try await supervisor.join()?.seedExitCode
        if case .continuing(_, let previous, _, _) = trial, code == 0 {
            // It ran and ended cleanly: confirmed.
            updater.confirmTrial(previous)
        }
        return code
    }

    /// The seed's `process_is_alive`: the app has been started and has not ended.
    public var processIsAlive: Bool {
        get async { await supervisor.isAlive }
    }

    /// The seed's `process_code_running`: the app's own code runs (its exec succeeded and it
    /// has not ended).
    public var processCodeRunning: Bool {
        get async { await supervisor.codeRunning }
    }

    /// The seed's `process_pid`: the current or last app process's pid.
    public var processPID: Int32? {
        get async { await supervisor.pid }
    }

    /// The seed's `process_exitcode`: `nil` while running or before the first run; the exit
    /// code, or −N after death by signal N (−15 after ``processTerminate()`` of an app that does
    /// not handle SIGTERM).
    public var processExitcode: Int32? {
        get async { await supervisor.exitStatus?.seedExitCode }
    }

    /// The seed's `process_join`: waits for the app to end.
    ///
    /// ```swift
    /// if try await launcher.processJoin(timeout: .seconds(5)) == nil { await launcher.processTerminate() }
    /// ```
    /// - Parameter timeout: How long to wait at most; `nil` for as long as it takes.
    /// - Returns: The exit code (as ``processExitcode``), or `nil` when the timeout passed first
    ///   or nothing was started.
    /// - Throws: `CancellationError` when the calling task was cancelled: the app was ended.
    @discardableResult
    public func processJoin(timeout: Duration? = nil) async throws -> Int32? {
        try await supervisor.join(timeout: timeout)?.seedExitCode
    }

    /// The seed's `process_terminate`: SIGTERM to the app's process group, SIGKILL after the
    /// grace period; returns once it is gone.
    ///
    /// ```swift
    /// let wasRunning = await launcher.processTerminate()
    /// ```
    /// - Returns: Whether the app was running.
    @discardableResult
    public func processTerminate() async -> Bool {
        await supervisor.terminate()
    }

    /// Sends `signal` to the app's process group (for example SIGHUP to make it reload).
    ///
    /// - Returns: Whether the app was running.
    @discardableResult
    public func processSignal(_ signal: Int32) async -> Bool {
        await supervisor.send(signal)
    }

    /// Ends the app with `signal` to its process group (SIGINT, SIGTERM), SIGKILL after the grace.
    ///
    /// - Returns: Whether the app was running.
    @discardableResult
    public func processStop(with signal: Int32) async -> Bool {
        await supervisor.stop(with: signal, grace: supervisor.configuration.grace)
    }
}
