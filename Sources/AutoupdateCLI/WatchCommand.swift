import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle
import UnixSignals

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Keep the app running and up to date, unattended: a service's or a kiosk's mode.",
        discussion: """
            Runs FILE as 'autoupdate run' does and polls version.txt every --interval seconds \
            (plus up to --jitter), with conditional requests. A new version is downloaded, \
            extracted and verified while the app keeps running; then the app is stopped \
            (SIGTERM, SIGKILL after --grace), the new version installed and started. If it exits \
            non-zero or dies within --health-window seconds, the previous version is put back and \
            the bad one is never installed again. Failed checks back off exponentially and never \
            touch the app. SIGTERM or SIGINT: stop the app gracefully and exit 0. SIGHUP: check now. \
            SIGUSR1: roll back as .pyautodownloads/rollback-request.json asks ('autoupdate \
            rollback' writes it and sends the signal). Each step is a line on stderr.
            """
    )

    /// How a new version says it is ready, besides --health-cmd and --health-url.
    enum Ready: String, CaseIterable, ExpressibleByArgument {
        /// systemd's protocol: NOTIFY_SOCKET and READY=1.
        case notify
    }

    enum Restart: String, CaseIterable, ExpressibleByArgument {
        case always
        case onFailure = "on-failure"
        case never

        var policy: WatchConfiguration.RestartPolicy {
            switch self {
            case .always: .always
            case .onFailure: .onFailure
            case .never: .never
            }
        }
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: UpdateOptions
    @OptionGroup var trust: TrustOptions

    @Argument(help: "The app's executable, inside the app folder.")
    var file: String

    @Option(help: "The archive's name on the server: .zip, .tar.gz or .tar.bz2. Default: project.zip.")
    var archive: String?

    @Option(help: "Seconds between checks.")
    var interval: Double = 300

    @Option(help: "Up to this many seconds added at random to each interval.")
    var jitter: Double = 30

    @Option(help: "Seconds the app gets to end after SIGTERM before SIGKILL.")
    var grace: Double = 10

    @Option(help: "Restart the app when it exits on its own: always, on-failure, never (its exit ends the watch, with its status).")
    var restart: Restart = .always

    @Option(help: "Seconds after an update within which a failing new version is rolled back.")
    var healthWindow: Double = 30

    @Option(
        help:
            "Starts a new version gets before it must have passed its health window: when the watch or the machine dies during the window, the next watch starts it again while it has starts left, else puts the previous version back before starting anything."
    )
    var trialAttempts: Int = 1

    @Option(help: "Versions replaced by updates that stay kept in the update folder, for autoupdate rollback (lowest versions go first).")
    var keep: Int = 1

    @Option(
        help: ArgumentHelp(
            "A daily span of local time when a new version may be installed, such as 02:00-04:30 or 22:00-02:00; repeat for several. Checks and downloads happen at any time; a minimum or required release does not wait.",
            valueName: "HH:MM-HH:MM"))
    var window: [String] = []

    @Option(help: "While this file exists, nothing is checked or installed. Default: .pyautodownloads/inhibit in the app folder.")
    var inhibitFile: String?

    @Option(
        help:
            "A command (run with /bin/sh -c in the app folder) that exits 0 once a new version is ready: it must, within the health window, or the version is rolled back."
    )
    var healthCmd: String?

    @Option(
        help:
            "An http or https URL on 127.0.0.1, ::1 or localhost that answers 2xx once a new version is ready (instead of --health-cmd)."
    )
    var healthURL: String?

    @Option(
        help:
            "notify: the app gets NOTIFY_SOCKET, as under systemd, and a new version is ready once it sends READY=1 (sd_notify); instead of --health-cmd or --health-url."
    )
    var ready: Ready?

    @Option(help: "With --ready notify: seconds within which the app must send WATCHDOG=1 once ready; a missed ping stops it as hung.")
    var watchdog: Double?

    @Option(help: "Seconds between two checks of --health-cmd or --health-url.")
    var healthInterval: Double = 2

    @Option(help: "Passes in a row that make a new version ready.")
    var healthPasses: Int = 1

    @Option(help: "Seconds one check may take; a longer one fails.")
    var healthTimeout: Double = 5

    @Argument(parsing: .postTerminator, help: "Arguments for the app, after --.")
    var arguments: [String] = []

    func validate() throws {
        for text in window {
            do {
                _ = try InstallWindow(text)
            } catch let error as AutoupdateError {
                throw ValidationError("--window: \(error.message)")
            }
        }
        if let watchdog {
            guard ready == .notify else { throw ValidationError("--watchdog needs --ready notify: the pings come over NOTIFY_SOCKET.") }
            guard watchdog.isFinite, watchdog > 0 else { throw ValidationError("--watchdog must be a number of seconds above 0.") }
        }
        guard keep >= 0 else {
            throw ValidationError("--keep must be 0 or more.")
        }
        guard trialAttempts >= 1 else {
            throw ValidationError("--trial-attempts must be 1 or more.")
        }
        guard healthPasses >= 1 else {
            throw ValidationError("--health-passes must be 1 or more.")
        }
        if let healthCmd, healthCmd.trimmingWhitespace().isEmpty {
            throw ValidationError("--health-cmd must be a command.")
        }
        if [healthCmd != nil, healthURL != nil, ready != nil].filter({ $0 }).count > 1 {
            throw ValidationError("--health-cmd, --health-url and --ready: give one of them.")
        }
        if let healthURL {
            guard let url = URL(string: healthURL) else { throw ValidationError("--health-url: \(healthURL) is not a URL.") }
            do {
                try HealthCheck.validate(url: url)
            } catch let error as AutoupdateError {
                throw ValidationError("--health-url: \(error.message).")
            }
        }
        for (name, value, zeroAllowed) in [
            ("--interval", interval, false), ("--jitter", jitter, true), ("--grace", grace, true), ("--health-window", healthWindow, true),
            ("--health-interval", healthInterval, false), ("--health-timeout", healthTimeout, false),
        ] {
            guard value.isFinite, zeroAllowed ? value >= 0 : value > 0 else {
                throw ValidationError("\(name) must be a number of seconds\(zeroAllowed ? ", 0 or more" : " above 0").")
            }
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        var exitCode: Int32 = 0
        try await Failure.reporting {
            let folder = options.folder()
            let watcher = try Watcher(
                filepath: file, url: try options.updateURL().description, newfiles: try options.archiveName(archive).name,
                args: arguments, folder: folder, download: try options.downloadConfiguration(),
                extraction: options.extractionConfiguration(),
                trust: try trust.trustPolicy(), checkTimeout: options.checkTimeout(), channel: try options.releaseChannel(),
                pin: try options.releasePin(), differential: options.differential.setting, mirrors: try options.mirrors(), adoptsOrphans: true,
                configuration: WatchConfiguration(
                    interval: Self.duration(interval), jitter: Self.duration(jitter), grace: Self.duration(grace), restart: restart.policy,
                    healthWindow: Self.duration(healthWindow), trialAttempts: trialAttempts,
                    health: healthProbe.map {
                        HealthCheck(
                            $0, interval: Self.duration(healthInterval), passes: healthPasses, timeout: Self.duration(healthTimeout))
                    }, keep: keep, watchdog: watchdog.map(Self.duration), rollbackOnSIGUSR1: true,
                    installWindows: try window.map(InstallWindow.init), inhibitFile: inhibitFile),
                logger: Logger(label: "autoupdate"))
            let printer = Task {
                for await event in watcher.events {
                    if let line = Self.line(for: event) {
                        writeStandardError("autoupdate: \(line)\n")
                    }
                }
            }
            defer { printer.cancel() }
            // SIGTERM and SIGINT shut the group down gracefully (the app gets SIGTERM, nothing is
            // left half-installed); SIGHUP asks for a check. The app's own exit, when the
            // restart policy lets it end the watch, ends the group too.
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: watcher, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: Logger(label: "autoupdate.services")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        watcher.checkNow()
                    }
                }
                try await group.run()
                tasks.cancelAll()
            }
            exitCode = await watcher.exitCode ?? 0
        }
        if exitCode != 0 {
            throw ExitCode(exitCode)
        }
    }

    private var healthProbe: HealthCheck.Probe? {
        if ready == .notify { return .notify }
        if let healthCmd { return .command(healthCmd) }
        return healthURL.flatMap(URL.init(string:)).map { .url($0) }
    }

    private static func duration(_ seconds: Double) -> Duration {
        .milliseconds(Int64((seconds * 1000).rounded()))
    }

    private static func line(for event: WatchEvent) -> String? {
        switch event {
        case .started(let pid, let version): "started \(version.map(\.description) ?? "the app") (pid \(pid))"
        case .exited(let pid, let status): "pid \(pid) \(status)"
        case .upToDate: nil
        case .checkFailed(let message, let retryIn): "check failed, the app keeps running; retrying in \(seconds(retryIn)): \(message)"
        case .preparing(let version): "\(version) is available; downloading it while the app runs"
        case .prepared(let version): "\(version) downloaded, extracted and verified; swapping"
        case .swapped(let from, let to, let gap): "updated \(from) → \(to); the app was down for \(milliseconds(gap))"
        case .rolledBack(let bad, let to, let reason): "rolled back \(bad) → \(to): \(reason); \(bad) will not be installed again"
        case .skippedBad(let version): "skipping \(version): it failed its health check before"
        case .waitingForWindow(let version, let opensIn):
            "\(version) is ready; it installs when the next install window opens, in \(seconds(opensIn))"
        case .inhibited(let file): "updates are inhibited while \(file) exists: nothing checked or installed"
        case .stopped: "stopped"
        }
    }

    private static func seconds(_ duration: Duration) -> String {
        decimal(inSeconds(duration), places: 1) + " s"
    }

    private static func milliseconds(_ duration: Duration) -> String {
        decimal(inSeconds(duration) * 1000, places: 1) + " ms"
    }

    private static func inSeconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
