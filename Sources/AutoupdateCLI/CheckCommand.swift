import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the server's release.json (or version.txt) against the installed version.",
        discussion: """
            A newer version is written to .queue and logged in version_check.log \
            ("Old X|New Y|Time T"). A repeat check sends the validator of the last answer, so an \
            unchanged release.json or version.txt costs the server a 304. With --json, one JSON \
            object on stdout (always the server's word, not .queue's): installed, candidate, why, \
            mandatory, channel, size, notes, signed, serial, and download (the bytes the update \
            would fetch) with differential. Exit status 0 whether or not an \
            update is available; 1 when the server cannot be reached or its answer is invalid.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: UpdateOptions
    @OptionGroup var trust: TrustOptions

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    /// What `check --json` prints.
    struct Report: Encodable {
        var installed: String
        var candidate: String?
        /// The release policy's reason (see `ReleasePolicy.Reason`), or for a server without a
        /// release index: newer, up-to-date or server-invalid.
        var why: String
        var mandatory: Bool
        var channel: String
        var size: Int64?
        var notes: String?
        /// Whether the release index's signature was checked against a pinned key.
        var signed: Bool
        var serial: UInt64?
        /// Whether the server has a release index.
        var index: Bool
        /// What the update would download, in bytes: a differential update's ranges, or the
        /// whole archive (absent without a candidate or without an index).
        var download: Int64?
        /// Whether that is a differential update.
        var differential: Bool?
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let updater = Updater(
                folder: options.folder(), url: try options.updateURL(),
                configuration: try options.updaterConfiguration(archive: nil, trust: trust),
                logger: Logger(label: "autoupdate"))
            let result = try await (json ? updater.checkServer() : updater.check())
            if json {
                let planned = try await updater.plannedDownload(for: result)
                try printReport(result, channel: updater.configuration.channel, planned: planned)
                return
            }
            switch result.outcome {
            case .newVersion(let version):
                let mandatory = result.index?.decision.mandatory == true ? " (mandatory: \(result.index!.decision.reason.rawValue))" : ""
                print("update available: \(result.installed) → \(version)\(mandatory)")
            case .upToDate:
                let why = result.index.map { Self.explanation($0.decision.reason) } ?? ""
                print("up to date: \(result.installed)\(why)")
            case .serverInvalid:
                throw AutoupdateError(
                    .corruptedFile,
                    "the server's version.txt is not a valid version (its text is kept in \(options.folder().serverInvalidDumpPath)); nothing to update"
                )
            }
        }
    }

    private func printReport(_ result: VersionChecker.Result, channel: String, planned: (bytes: Int64, differential: Bool)?) throws {
        let decision = result.index?.decision
        let why: String =
            decision?.reason.rawValue
            ?? {
                switch result.outcome {
                case .newVersion: "newer"
                case .upToDate: "up-to-date"
                case .serverInvalid: "server-invalid"
                }
            }()
        let report = Report(
            installed: result.installed.description, candidate: result.available?.description, why: why,
            mandatory: decision?.mandatory ?? false, channel: decision?.channel ?? channel, size: result.release?.size,
            notes: result.release?.notes, signed: result.index?.signed ?? false, serial: result.index?.serial, index: result.index != nil,
            download: planned?.bytes, differential: planned?.differential)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    private static func explanation(_ reason: ReleasePolicy.Reason) -> String {
        switch reason {
        case .outsideRollout: " (a newer release is not offered to this install yet: staged rollout)"
        case .pinnedOut: " (newer releases are outside --pin)"
        case .withdrawn: " (newer releases were yanked or failed here before)"
        default: ""
        }
    }
}
