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

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show an app folder's update state: installed, kept and bad versions, a trial, the last check.",
        discussion: """
            Reads the folder's files only: no network, no lock, nothing written. With --json, one \
            object (see the README for its fields).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The app folder.")
    var dir: String = "."

    @Option(help: "The inhibit file to look for. Default: .pyautodownloads/inhibit in the app folder.")
    var inhibitFile: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            var info = stat()
            guard stat(dir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw AutoupdateError(.invalidArgument, "--dir \(dir): no such folder")
            }
            let status = AppFolder(path: dir).status(inhibitFile: inhibitFile)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
                return
            }
            print(Self.text(status), terminator: "")
        }
    }

    static func text(_ status: AppStatus) -> String {
        func list(_ versions: [String]) -> String { versions.isEmpty ? "none" : versions.joined(separator: ", ") }
        var lines = ["app folder: \(status.folder)"]
        lines.append(
            "installed: \(status.installed ?? "nothing")\(status.highest.map { $0 != status.installed ? " (highest ever \($0))" : "" } ?? "")"
        )
        if let trial = status.trial {
            lines.append(
                "on trial: \(trial.candidate), start \(trial.starts) of \(trial.maxStarts), \(trial.previous) kept to go back to"
                    + (trial.rollingBack ? " (a rollback to it was interrupted: the next start finishes it)" : ""))
        } else {
            lines.append("on trial: nothing")
        }
        lines.append("kept versions: \(list(status.kept))")
        lines.append("bad versions: \(list(status.bad))")
        lines.append("queued: \(status.queued ?? "nothing")")
        if let check = status.lastCheck {
            var line = "last check: \(check.time), \(check.result)"
            if let version = check.version { line += " \(version)" }
            if let channel = check.channel { line += " (channel \(channel)\(check.serial.map { ", serial \($0)" } ?? ""))" }
            if let reason = check.reason { line += ": \(reason)" }
            lines.append(line)
        } else {
            lines.append("last check: never")
        }
        lines.append("install id: \(status.installID ?? "not made yet (the first check of a release index makes it)")")
        if status.inhibited {
            lines.append("updates: inhibited (the inhibit file exists): watch and run neither check nor install")
        }
        if let pid = status.watchPID {
            lines.append("watch: running (pid \(pid)); autoupdate rollback asks it")
        }
        if status.interruptedInstall {
            lines.append("an install was interrupted: the next update (or autoupdate recover) finishes or undoes it")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
