#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An append-only JSON-lines record of every check and update, in the update folder (the check
/// log beside the app keeps the seed's format): when, what, from where, the HTTP status, bytes, the archive's hash, the
/// signing key, and the decision with its reason.
///
/// ```json
/// {"decision":"installed","event":"update","sha256":"…","time":"2026-11-24T21:30:05Z","url":"https://…/project.zip","version":"2.0"}
/// ```
///
/// Writing is best effort: an audit line that cannot be written never blocks an update.
struct AuditLog: Sendable {
    /// One line; `autoupdate status` reads the last check back.
    struct Record: Codable {
        var time: String
        var event: String
        var url: String?
        var status: Int?
        var bytes: Int64?
        var hash: String?
        var keyID: String?
        var version: String?
        var decision: String
        var reason: String?
        /// Release index checks: the serial, the channel, whether the install is in the newest
        /// release's rollout, and the policy's reason.
        var serial: UInt64?
        var channel: String?
        var rollout: String?
        var why: String?
    }

    let folder: AppFolder

    func record(
        event: String, url: URL? = nil, status: Int? = nil, bytes: Int64? = nil, hash: String? = nil,
        keyID: String? = nil, version: String? = nil, decision: String, reason: String? = nil, serial: UInt64? = nil,
        channel: String? = nil, rollout: String? = nil, why: String? = nil
    ) {
        let record = Record(
            time: Date().iso8601, event: event, url: url?.displayString, status: status,
            bytes: bytes, hash: hash, keyID: keyID, version: version, decision: decision, reason: reason, serial: serial,
            channel: channel, rollout: rollout, why: why)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record) else { return }
        let path = folder.auditLogPath
        try? FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
        try? folder.append(
            String(decoding: data, as: UTF8.self) + "\n", toFileNamed: path.lastPathComponent, in: folder.updateDirectory)
    }
}
