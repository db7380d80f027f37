#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What an app folder says about its updates, read from its files alone (no network, no lock,
/// nothing written): `autoupdate status`.
public struct AppStatus: Sendable, Equatable, Encodable {
    /// A new version installed on trial and not yet confirmed.
    public struct TrialState: Sendable, Equatable, Encodable {
        public var candidate: String
        public var previous: String
        /// Starts so far, and allowed before it must have been confirmed.
        public var starts: Int
        public var maxStarts: Int
        /// A rollback has begun (the next start finishes it).
        public var rollingBack: Bool
    }

    /// The last check, from the audit trail (or, for checks before it, the check log).
    public struct LastCheck: Sendable, Equatable, Encodable {
        /// When: ISO 8601 (audit trail) or the check log's `YYYY-MM-DD HH:MM:SS.ffffff` UTC.
        public var time: String
        /// `up-to-date`, `update-available`, `failed`, `refused`, …
        public var result: String
        /// The version the server offered, when it offered one.
        public var version: String?
        public var channel: String?
        /// The release index's serial, when the server has an index.
        public var serial: UInt64?
        /// Why it failed or was refused.
        public var reason: String?
    }

    /// The app folder, as given.
    public var folder: String
    /// `version.txt`; `nil` when nothing is installed (or it cannot be read).
    public var installed: String?
    /// The highest version ever installed here (rollback protection's floor).
    public var highest: String?
    /// Versions kept in the update folder for a rollback, oldest first.
    public var kept: [String]
    public var trial: TrialState?
    /// Versions rolled back or yanked here: never installed again.
    public var bad: [String]
    /// A version a check found and that is not installed yet (`.queue`).
    public var queued: String?
    public var lastCheck: LastCheck?
    /// The install's id for staged rollouts, when one was made (or `AUTOUPDATE_INSTALL_ID`).
    public var installID: String?
    /// An install was interrupted and waits for `autoupdate recover` (every update runs it first).
    public var interruptedInstall: Bool
    /// The pid of the `autoupdate watch` that runs the app, while one does.
    public var watchPID: Int32?
    /// The inhibit file exists: `watch` and `run` neither check nor install.
    public var inhibited: Bool
}

extension AppFolder {
    /// Reads the folder's update state (see ``AppStatus``): nothing is written, nothing is
    /// locked, no server is asked, and only the audit trail's last 64 KiB are read.
    ///
    /// - Parameters:
    ///   - environment: Where `AUTOUPDATE_INSTALL_ID` is looked up (the process's
    ///     environment when `nil`).
    ///   - inhibitFile: The inhibit file to look for; `nil`: ``inhibitFilePath``.
    public func status(environment: [String: String]? = nil, inhibitFile: String? = nil) -> AppStatus {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let trial = try? readTrial()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: updateDirectory)) ?? []
        let kept = names.compactMap { name -> Version? in
            guard name.hasPrefix("previous-") else { return nil }
            return try? Version(String(name.dropFirst("previous-".count)))
        }.sorted()
        var installID = environment[Self.installIDVariable].flatMap { Self.isValidInstallID($0) ? $0 : nil }
        if installID == nil, let data = FileManager.default.contents(atPath: updateDirectory + "/install-id") {
            let text = String(String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).first ?? "")
            installID = Self.isValidInstallID(text) ? text : nil
        }
        return AppStatus(
            folder: path, installed: readVersionDoc().value?.description, highest: readHighestVersion()?.description,
            kept: kept.map(\.description),
            trial: trial.map {
                AppStatus.TrialState(
                    candidate: $0.candidate, previous: $0.previous, starts: $0.starts, maxStarts: $0.maxStarts, rollingBack: $0.rollingBack)
            },
            bad: readBadVersions().sorted().map(\.description), queued: readQueue().value?.description,
            lastCheck: lastAuditedCheck() ?? lastLoggedCheck(), installID: installID,
            interruptedInstall: FileManager.default.fileExists(atPath: updateDirectory + "/journal.json"), watchPID: runningWatch()?.pid,
            inhibited: FileManager.default.fileExists(atPath: inhibitFile ?? inhibitFilePath))
    }

    /// The newest `check` record in the audit trail's tail.
    private func lastAuditedCheck() -> AppStatus.LastCheck? {
        guard let handle = OpenFile(forReadingAtPath: auditLogPath) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return nil }
        let start = size > 65_536 ? size - 65_536 : 0
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return nil }
        let decoder = JSONDecoder()
        for line in data.split(separator: UInt8(ascii: "\n")).reversed() {
            // The first line of the tail may be cut: it does not decode, and is skipped.
            guard let record = try? decoder.decode(AuditLog.Record.self, from: Data(line)), record.event == "check" else { continue }
            return AppStatus.LastCheck(
                time: record.time, result: record.decision, version: record.version, channel: record.channel, serial: record.serial,
                reason: record.reason)
        }
        return nil
    }

    /// The check log's last line (checks made before the audit trail, or by autoupdate 0.1).
    private func lastLoggedCheck() -> AppStatus.LastCheck? {
        guard let line = readCheckLog().value?.last else { return nil }
        switch line.outcome {
        case .newVersion(let version): return AppStatus.LastCheck(time: line.time, result: "update-available", version: version.description)
        case .upToDate: return AppStatus.LastCheck(time: line.time, result: "up-to-date")
        case .serverInvalid: return AppStatus.LastCheck(time: line.time, result: "server-invalid")
        }
    }
}
