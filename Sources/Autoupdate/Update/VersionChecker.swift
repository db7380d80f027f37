#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging

/// Checks the server against the installed version: its release index `release.json` when it
/// has one (see ``ReleasePolicy`` for the rules), else its `version.txt`, with the seed's
/// semantics.
///
/// - A valid `.queue` newer than the installed version means an update is already known: the
///   check reports it without a request (pyautoupdate's rule), unless freshness is required.
///   It is only a hint: ``checkServer()`` (what every update runs) always asks the server.
/// - Otherwise `BASE/version.txt` is fetched, conditionally: the validator of the last answer
///   is remembered (in the update folder), so a repeat check costs the server a `304`.
/// - Newer: `.queue` gets the version and the log `Old X|New Y|Time T`. Same or older:
///   `Old X|Up to date|Time T`, and a `.queue` the server no longer announces is dropped. Not a
///   version: `Old X|Server invalid|Time T`, the text is kept in the update folder for
///   inspection, a warning is logged, and the check reports no update.
/// - The whole check (`version.txt` and, when freshness is required, its signature) is bounded
///   by ``UpdaterConfiguration/checkTimeout``.
///
/// A missing `version.txt` counts as `0.0.0` (nothing installed yet); a corrupted one is a
/// logged warning and counts as `0.0.0` too, so that the next update repairs it.
public final class VersionChecker: Sendable {
    /// The result of one check.
    public struct Result: Sendable, Equatable {
        /// The installed version (`0.0.0` when none is recorded).
        public let installed: Version
        /// The newer version found, if any.
        public let available: Version?
        /// What the check log recorded.
        public let outcome: AppFolder.CheckOutcome
        /// Whether it came from `.queue`, without asking the server.
        public let fromQueue: Bool
        /// Whether the server answered `304 Not Modified`.
        public let notModified: Bool
        /// Until when the server's word holds, when freshness is required: its signature's
        /// expiry and the latest time its age allows. An install re-checks it.
        let freshUntil: Date?
        /// What the release index said, when the server has one.
        public let index: IndexAnswer?

        /// The index's part of a check.
        public struct IndexAnswer: Sendable, Equatable {
            /// The index's serial.
            public let serial: UInt64
            /// Whether its signature was checked against a pinned key.
            public let signed: Bool
            /// The decision, with the candidate release and the reason.
            public let decision: ReleasePolicy.Decision
        }

        /// The candidate release from the index, if any.
        public var release: ReleaseIndex.Release? { index?.decision.candidate }

        init(
            installed: Version, available: Version?, outcome: AppFolder.CheckOutcome, fromQueue: Bool, notModified: Bool,
            freshUntil: Date? = nil, index: IndexAnswer? = nil
        ) {
            self.installed = installed
            self.available = available
            self.outcome = outcome
            self.fromQueue = fromQueue
            self.notModified = notModified
            self.freshUntil = freshUntil
            self.index = index
        }
    }

    private struct Cache: Codable {
        var url: String
        var validator: HTTPValidator
        var body: String
    }

    public let folder: AppFolder
    public let url: UpdateURL
    let downloader: Downloader
    let trust: TrustPolicy
    let timeout: Duration
    let logger: Logger
    let audit: AuditLog
    /// The channel and pin the index is read with.
    let channel: String
    let pin: VersionSpecifierSet?
    /// Whose index this is, for the serial and validator remembered between checks: a mirror
    /// serves the update URL's index, and one of its serials seen anywhere is seen for all.
    let memoryKey: String

    /// - Parameters:
    ///   - folder: The app folder.
    ///   - url: The update folder on the server.
    ///   - downloader: The downloader to ask with (its trust settings apply).
    ///   - trust: Keys, freshness and the app identity the server's word must have.
    ///   - timeout: The bound on one whole check.
    ///   - channel: The release channel to follow (see ``ReleasePolicy``).
    ///   - pin: Releases outside this specifier set are ignored.
    ///   - logger: Where warnings about corrupted files go.
    public convenience init(
        folder: AppFolder, url: UpdateURL, downloader: Downloader, trust: TrustPolicy = TrustPolicy(),
        timeout: Duration = UpdaterConfiguration.defaultCheckTimeout, channel: String = "stable", pin: VersionSpecifierSet? = nil,
        logger: Logger = Logger(label: "autoupdate.check")
    ) {
        self.init(
            folder: folder, url: url, downloader: downloader, trust: trust, timeout: timeout, channel: channel, pin: pin, logger: logger,
            memoryKey: nil)
    }

    /// As the public initializer; `memoryKey` (default: `url`) names whose index is remembered.
    init(
        folder: AppFolder, url: UpdateURL, downloader: Downloader, trust: TrustPolicy, timeout: Duration, channel: String,
        pin: VersionSpecifierSet?, logger: Logger, memoryKey: String?
    ) {
        self.channel = channel
        self.pin = pin
        self.trust = trust
        self.timeout = timeout
        self.folder = folder
        self.url = url
        self.memoryKey = memoryKey ?? url.description
        self.downloader = downloader
        self.logger = logger
        self.audit = AuditLog(folder: folder)
    }

    /// The seed's `check_new`: whether a newer version is available.
    ///
    /// - Throws: ``AutoupdateError`` when the server cannot be reached or answers with an error
    ///   (an invalid version text is not an error: it returns `false`).
    public func checkNew() async throws -> Bool {
        try await check().available != nil
    }

    /// Checks and reports in detail: the seed's `check_new` (a queued version answers without
    /// a request, unless freshness is required).
    public func check() async throws -> Result {
        try await check(askingServer: trust.requireFreshVersion)
    }

    /// Checks with the server, whatever `.queue` says: what an update runs, so that only the
    /// version the server announces now (and its signature names) is ever installed.
    public func checkServer() async throws -> Result {
        try await check(askingServer: true)
    }

    private func check(askingServer: Bool) async throws -> Result {
        let installed = installedVersion()
        switch folder.readQueue() {
        case .valid(let queued) where queued > installed && !askingServer:
            logger.debug("update already queued", metadata: ["update.version.new": "\(queued)"])
            return Result(installed: installed, available: queued, outcome: .newVersion(queued), fromQueue: true, notModified: false)
        case .valid(let queued) where queued <= installed:
            try folder.removeQueue()  // stale: not newer than what is installed
        case .corrupted(let reason):
            logger.attention("corrupted queue file ignored", metadata: ["file.reason": "\(reason)"])
            try folder.removeQueue()
        case .valid, .missing:
            break
        }

        if let answer = try await checkIndex(installed: installed) {
            return answer
        }
        let versionURL = url.appending("version.txt")
        let (text, status, freshUntil) = try await withTimeout(timeout, "checking \(versionURL.displayString)") {
            try await self.ask(versionURL)
        }
        let notModified = status == 304

        let server: Version
        do {
            server = try Version(text)
        } catch {
            try folder.removeQueue()  // the server no longer announces what it may hold
            logger.attention(
                "the server's version.txt is not a valid version",
                metadata: [
                    "update.url": "\(versionURL.displayString)", "update.server.text": "\(quoted(text))",
                ])
            try? FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
            try? AtomicFile.write(Array(text.utf8), to: folder.serverInvalidDumpPath)
            try folder.appendCheckLog(old: installed, outcome: .serverInvalid)
            audit.record(
                event: "check", url: versionURL, status: status, decision: "server-invalid", reason: "version.txt holds \(quoted(text))")
            return Result(installed: installed, available: nil, outcome: .serverInvalid, fromQueue: false, notModified: notModified)
        }
        // Without an index, the pin still applies to the one version the server announces.
        let pinnedOut = pin.map { $0.filter([server], preReleases: channel == "stable" ? nil : true, version: { $0 }).isEmpty } ?? false
        guard server > installed, !pinnedOut else {
            try folder.removeQueue()
            try folder.appendCheckLog(old: installed, outcome: .upToDate)
            audit.record(
                event: "check", url: versionURL, status: status, version: server.description, decision: "up-to-date",
                reason: pinnedOut ? "outside the pin \(pin!)" : nil)
            return Result(installed: installed, available: nil, outcome: .upToDate, fromQueue: false, notModified: notModified)
        }
        try folder.writeQueue(server)
        try folder.appendCheckLog(old: installed, outcome: .newVersion(server))
        audit.record(event: "check", url: versionURL, status: status, version: server.description, decision: "update-available")
        logger.info("update available", metadata: ["update.version.old": "\(installed)", "update.version.new": "\(server)"])
        return Result(
            installed: installed, available: server, outcome: .newVersion(server), fromQueue: false, notModified: notModified,
            freshUntil: freshUntil)
    }

    /// Fetches `version.txt` (conditionally) and, when freshness is required, checks its
    /// signature. Returns the text, the HTTP status, and until when it is fresh.
    private func ask(_ versionURL: URL) async throws -> (String, Int, Date?) {
        var cache = readCache()
        let text: String
        var status = 200
        do {
            switch try await downloader.fetch(versionURL, validator: cache?.validator, maxBytes: 64 << 10) {
            case .notModified:
                status = 304
                text = cache?.body ?? ""
            case .modified(let body, let validator):
                text = String(decoding: body, as: UTF8.self)
                cache = validator.map { Cache(url: url.description, validator: $0, body: text) }
                writeCache(cache)
            }
        } catch let error as AutoupdateError {
            audit.record(event: "check", url: versionURL, status: error.httpStatus, decision: "failed", reason: error.message)
            throw error
        }
        guard trust.requireFreshVersion else {
            return (text, status, nil)
        }
        let signatureURL = url.appending("version.txt.minisig")
        do {
            return (text, status, try await checkFreshness(of: text, signatureURL: signatureURL))
        } catch let error as AutoupdateError {
            audit.record(event: "check", url: signatureURL, status: error.httpStatus, decision: "refused", reason: error.message)
            throw error
        }
    }

    /// Freeze protection: `version.txt.minisig` is by a trusted key, covers `text`, names this
    /// app (if it names one), and has not expired (nor is older than the maximum age).
    ///
    /// - Returns: Until when it holds: its expiry, or sooner when the maximum age says so.
    private func checkFreshness(of text: String, signatureURL: URL) async throws -> Date {
        guard trust.requiresSignatures else {
            throw AutoupdateError(
                .invalidArgument, "a fresh version.txt is required, but no public key was given to check its signature with")
        }
        let signature = try await downloader.signature(at: signatureURL)
        let verified: Minisign.Verified
        do {
            verified = try Minisign.verify(signature, prehash: nil, message: Array(text.utf8), trusting: trust.publicKeys)
        } catch let error as AutoupdateError {
            throw error.adding(context: "checking \(signatureURL.displayString) against version.txt")
        }
        let comment = ReleaseComment(verified.trustedComment)
        if let file = comment.file, file != "version.txt" {
            throw AutoupdateError(.signature, "\(signatureURL.displayString) is a signature for \(quoted(file)), not for version.txt")
        }
        try comment.check(app: trust.appIdentity(for: url), pinned: trust.app != nil, signature: signatureURL.displayString)
        let freshUntil = try freshness(of: comment, signatureURL: signatureURL, signedFile: "version.txt")
        logger.debug("version.txt is fresh", metadata: ["signature.key": "\(verified.key.keyIDHex)", "signature.expires": "\(freshUntil)"])
        return freshUntil
    }

    /// Until when a signature that must be fresh holds: its expiry, or sooner when the maximum
    /// age says so.
    func freshness(of comment: ReleaseComment, signatureURL: URL, signedFile: String) throws -> Date {
        let now = Date()
        guard let expires = comment.expires else {
            throw AutoupdateError(
                .signature,
                "\(signatureURL.displayString) names no expiry (its trusted comment needs 'expires:<unix time>'; sign with 'autoupdate sign \(signedFile) --expires-in S')"
            )
        }
        guard expires > now else {
            throw AutoupdateError(
                .signature,
                "\(signatureURL.displayString) expired at \(expires.iso8601): the publisher stopped re-signing \(signedFile), or the server replays an old one"
            )
        }
        var freshUntil = expires
        if let maxAge = trust.maxVersionAge {
            guard let signed = comment.timestamp else {
                throw AutoupdateError(
                    .signature, "\(signatureURL.displayString) names no signing time ('timestamp:'), and a maximum age is required")
            }
            guard now.timeIntervalSince(signed) <= maxAge.timeInterval else {
                throw AutoupdateError(
                    .signature,
                    "\(signatureURL.displayString) was signed at \(signed.iso8601), longer ago than the maximum age of \(maxAge.seconds) s"
                )
            }
            freshUntil = min(expires, signed.addingTimeInterval(maxAge.timeInterval))
        }
        return freshUntil
    }

    /// The installed version; `0.0.0` when missing or corrupted (a warning for the latter).
    func installedVersion() -> Version {
        switch folder.readVersionDoc() {
        case .valid(let version):
            return version
        case .missing:
            return Version.zero
        case .corrupted(let reason):
            logger.attention("corrupted version file; treating the app as not installed", metadata: ["file.reason": "\(reason)"])
            return Version.zero
        }
    }

    private var cachePath: String { folder.updateDirectory + "/version-check.json" }

    private func readCache() -> Cache? {
        guard let data = FileManager.default.contents(atPath: cachePath),
            let cache = try? JSONDecoder().decode(Cache.self, from: data), cache.url == url.description
        else { return nil }
        return cache
    }

    private func writeCache(_ cache: Cache?) {
        guard let cache, let data = try? JSONEncoder().encode(cache) else {
            try? FileManager.default.removeItem(atPath: cachePath)
            return
        }
        try? FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
        try? AtomicFile.write(Array(data), to: cachePath)
    }
}

extension Version {
    /// `0.0.0`: what an app folder without a valid `version.txt` counts as.
    public static let zero = Version(epoch: .zero, release: [0, 0, 0], preRelease: nil, postRelease: nil, devRelease: nil, local: nil)
}
