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

struct UpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Check, download, verify and install the newest version.",
        discussion: """
            The archive is extracted while it downloads into the update folder, then installed \
            by a journaled swap: after any crash the app is entirely the old version or entirely \
            the new one. Refused while the app runs (run it through 'autoupdate run'). Exit \
            status 0 when updated or already up to date, 1 on any failure (the app is untouched).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: UpdateOptions
    @OptionGroup var trust: TrustOptions

    @Option(help: "The archive's name on the server: .zip, .tar.gz or .tar.bz2. Default: $AUTOUPDATE_NEWFILES, else project.zip.")
    var archive: String?

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let configuration = try options.updaterConfiguration(archive: archive, trust: trust)
            let updater = Updater(
                folder: options.folder(), url: try options.updateURL(), configuration: configuration, logger: Logger(label: "autoupdate"))
            let progress = ProgressDisplay()
            let outcome = try await updater.update { progress.show($0) }
            progress.end()
            switch outcome {
            case .updated(let from, let to):
                print("updated \(from) → \(to)\(configuration.trust.requiresSignatures ? " (signature verified)" : "")")
            case .upToDate(let version):
                print("up to date: \(version)")
            case .serverInvalid:
                throw AutoupdateError(.corruptedFile, "the server's version.txt is not a valid version; nothing was installed")
            }
        }
    }
}

/// Progress on stderr: one live line on a terminal (bytes, rate, ETA), plain lines otherwise.
final class ProgressDisplay: Sendable {
    private struct State {
        var phase = ""
        var lastDraw = ContinuousClock.now - .seconds(1)
        var drewLine = false
    }

    private let isTerminal = isatty(2) == 1
    private let state = Mutex(State())

    func show(_ event: UpdateEvent) {
        switch event {
        case .recovered(let outcome):
            line("recovered an interrupted install: \(outcome)")
        case .checking(let url):
            line("checking \(url.absoluteString)")
        case .checked(let result):
            if let available = result.available {
                line("update available: \(result.installed) → \(available)\(result.fromQueue ? " (queued)" : "")")
            }
        case .downloading(let progress):
            download(progress)
        case .extracted(let report):
            line("downloaded and extracted \(count(report.files, "file")) (\(Self.bytes(report.bytes)))")
        case .verifying:
            line("verifying the signature")
        case .installing(let version):
            line("installing \(version)")
        case .installed:
            break
        }
    }

    private func download(_ progress: DownloadProgress) {
        state.withLock { state in
            if !isTerminal {
                if state.phase != "download" {
                    state.phase = "download"
                    write("downloading\(progress.totalBytes.map { " \(Self.bytes($0))" } ?? "")\n")
                }
                return
            }
            let now = ContinuousClock.now
            guard now - state.lastDraw > .milliseconds(100) || progress.fractionCompleted == 1 else { return }
            state.lastDraw = now
            var text = "downloading \(Self.bytes(progress.receivedBytes))"
            if let total = progress.totalBytes {
                text += " / \(Self.bytes(total)) (\(Int((progress.fractionCompleted ?? 0) * 100))%)"
            }
            text += ", \(Self.bytes(Int64(progress.bytesPerSecond)))/s"
            if let eta = progress.estimatedTimeRemaining {
                text += ", ETA \(eta.components.seconds) s"
            }
            write("\r\u{1B}[2K" + text)
            state.drewLine = true
        }
    }

    private func line(_ text: String) {
        state.withLock { state in
            if state.drewLine {
                write("\n")
                state.drewLine = false
            }
            write(text + "\n")
        }
    }

    /// Ends a live line.
    func end() {
        state.withLock { state in
            if state.drewLine {
                write("\n")
                state.drewLine = false
            }
        }
    }

    private func write(_ text: String) {
        writeStandardError(text)
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) B" : decimal(value, places: 1) + " " + units[unit]
    }
}
