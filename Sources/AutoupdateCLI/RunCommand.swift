import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Synchronization

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Update the app if asked to, then run it and exit with its exit status.",
        discussion: """
            FILE is the app's executable (a binary, or a script with a #! line) inside the app \
            folder, relative to --dir or absolute. Before it starts, a newer version is installed \
            as --update says; a failed check or update is reported and the installed version \
            runs. The app runs in the app folder, in a process group of its own, with the \
            AUTOUPDATE_* variables in its environment ('autoupdate check' inside it needs no \
            flags). SIGINT and SIGTERM sent to autoupdate are passed to the app, which is killed \
            if it has not ended after --grace seconds; SIGHUP is passed on. Exit status: the \
            app's, or 128+N when it died of signal N; 1 when it could not be started.
            """
    )

    enum UpdatePolicy: String, CaseIterable, ExpressibleByArgument {
        case auto, ask, never
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: UpdateOptions
    @OptionGroup var trust: TrustOptions

    @Argument(help: "The app's executable, inside the app folder.")
    var file: String

    @Option(help: "The archive's name on the server: .zip, .tar.gz or .tar.bz2. Default: $AUTOUPDATE_NEWFILES, else project.zip.")
    var archive: String?

    @Option(
        help:
            "Before starting: install a newer version (auto), ask on the terminal and decline without one (ask), or skip the check (never)."
    )
    var update: UpdatePolicy = .auto

    @Option(help: "While this file exists, nothing is checked or installed. Default: .pyautodownloads/inhibit in the app folder.")
    var inhibitFile: String?

    @Option(help: "Seconds the app gets to end after SIGTERM (or a forwarded SIGINT) before SIGKILL.")
    var grace: Double = 5

    @Argument(parsing: .postTerminator, help: "Arguments for the app, after --.")
    var arguments: [String] = []

    func validate() throws {
        guard grace >= 0, grace.isFinite else {
            throw ValidationError("--grace must be a number of seconds, 0 or more.")
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        let folder = options.folder()
        var exitCode: Int32 = 0
        try await Failure.reporting {
            // The terminal goes to the app while it runs, as a shell gives it to a job.
            let ownsTerminal = isatty(0) == 1 && tcgetpgrp(0) == getpgrp()
            let launcher = try Launcher(
                filepath: resolvedFile(in: folder), url: try options.updateURL().description,
                newfiles: try options.archiveName(archive).name, logLevel: global.logLevel.level, args: arguments,
                folder: folder, download: try options.downloadConfiguration(), extraction: options.extractionConfiguration(),
                trust: try trust.trustPolicy(), checkTimeout: options.checkTimeout(default: .seconds(5)),
                channel: try options.releaseChannel(), pin: try options.releasePin(), differential: options.differential.setting, mirrors: try options.mirrors(),
                grace: .milliseconds(Int64(grace * 1000)),
                foregroundTerminal: ownsTerminal ? 0 : nil, adoptsOrphans: true, logger: Logger(label: "autoupdate"))
            if update != .never {
                await updateIfWanted(launcher)
            }
            let forwarding = SignalForwarding(launcher)
            defer { forwarding.cancel() }
            try await launcher.run(background: true)
            forwarding.childStarted()
            let code = try await launcher.processJoin() ?? 0
            exitCode = code < 0 ? 128 - code : code
        }
        if exitCode != 0 {
            throw ExitCode(exitCode)
        }
    }

    /// FILE relative to the app folder, or, when that names nothing, relative to the current
    /// directory (then it must still lie inside the folder).
    private func resolvedFile(in folder: AppFolder) throws -> String {
        let inFolder = try? folder.resolve(file)
        if file.hasPrefix("/") || inFolder.map({ FileManager.default.fileExists(atPath: $0) }) == true {
            return file
        }
        let fromHere = FileManager.default.currentDirectoryPath + "/" + file
        return FileManager.default.fileExists(atPath: fromHere) ? fromHere : file
    }

    /// Checks and installs as `--update` says; a failure is reported and the installed version runs.
    private func updateIfWanted(_ launcher: Launcher) async {
        let inhibit = inhibitFile ?? launcher.folder.inhibitFilePath
        if update != .never, FileManager.default.fileExists(atPath: inhibit) {
            note("updates are inhibited while \(inhibit) exists: not checking")
            return
        }
        do {
            let installed = launcher.folder.readVersionDoc().value.map(\.description) ?? "0.0.0"
            // `auto` goes straight to the update, which asks the server itself: one check, not two.
            if update == .ask {
                let result = try await launcher.checkServer()
                guard let available = result.available else { return }
                if let decision = result.index?.decision, decision.mandatory {
                    // A minimum version, a required release or a yanked install: not the user's call.
                    note("update \(installed) → \(available) is mandatory (\(decision.reason.rawValue)): updating")
                } else if !confirm("update \(installed) → \(available)?") {
                    note("not updating; running \(installed)")
                    return
                }
            }
            let progress = ProgressDisplay()
            let consumer = Task {
                for await event in launcher.events {
                    if case .update(let update) = event { progress.show(update) }
                }
            }
            defer { consumer.cancel() }
            if try await launcher.updateCode() {
                progress.end()
                // The server's word at the update, which may differ from what the check queued.
                note("updated \(installed) → \(launcher.folder.readVersionDoc().value.map(\.description) ?? "?")")
            }
        } catch let error as AutoupdateError {
            note("warning: no update: \(error.message); running the installed version")
        } catch {
            note("warning: no update: \(error); running the installed version")
        }
    }

    /// Asks on the terminal; without one (a service, a pipe) the answer is no.
    private func confirm(_ question: String) -> Bool {
        guard isatty(0) == 1 else {
            note("\(question) no terminal to ask on: declined")
            return false
        }
        writeStandardError("autoupdate: \(question) [y/N] ")
        let answer = readLine()?.trimmingWhitespace().lowercased() ?? ""
        return answer == "y" || answer == "yes"
    }

    private func note(_ text: String) {
        writeStandardError("autoupdate: \(text)\n")
    }
}

/// Passes SIGINT, SIGTERM and SIGHUP sent to autoupdate on to the app: INT and TERM end it
/// (SIGKILL after the grace period), HUP is only forwarded. Signals that arrive before the app
/// has started are held and delivered once it has.
private final class SignalForwarding {
    /// Holds signals until the app has started.
    private final class Gate: Sendable {
        private struct State {
            var started = false
            var pending: [Int32] = []
        }

        private let state = Mutex(State())

        /// Whether to deliver `number` now; otherwise it is held.
        func arrived(_ number: Int32) -> Bool {
            state.withLock { state in
                if !state.started, !state.pending.contains(number) { state.pending.append(number) }
                return state.started
            }
        }

        /// Opens the gate, returning the signals held, in the order they came.
        func open() -> [Int32] {
            state.withLock { state in
                state.started = true
                return state.pending
            }
        }
    }

    private let launcher: Launcher
    private let gate = Gate()
    private var handlers: SignalHandlers?

    init(_ launcher: Launcher) {
        self.launcher = launcher
        let gate = gate
        handlers = SignalHandlers { number in
            if gate.arrived(number) { Self.forward(number, to: launcher) }
        }
    }

    /// Delivers, in order, the signals that came before the app started.
    func childStarted() {
        Task { [pending = gate.open(), launcher] in
            for number in pending {
                await deliver(number, to: launcher)
            }
        }
    }

    private static func forward(_ number: Int32, to launcher: Launcher) {
        Task { await deliver(number, to: launcher) }
    }

    func cancel() {
        handlers?.cancel()
    }
}

/// SIGHUP is passed on; SIGINT and SIGTERM end the app (SIGKILL after the grace period).
private func deliver(_ number: Int32, to launcher: Launcher) async {
    if number == SIGHUP {
        await launcher.processSignal(number)
    } else {
        await launcher.processStop(with: number)
    }
}
