#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging

/// How an ``Updater`` downloads, extracts and trusts updates.
public struct UpdaterConfiguration: Sendable {
    /// The archive's name on the server (the seed's `newfiles`). Default `project.zip`.
    public var archive: ArchiveName
    /// Trust, timeouts, caps and retries for every request.
    public var download: DownloadConfiguration
    /// Caps on the extracted tree.
    public var extraction: ExtractionConfiguration
    /// Signatures and freshness required of the server (none by default: HTTPS alone).
    public var trust: TrustPolicy
    /// The bound on one check of the server (`version.txt` and, when freshness is required, its
    /// signature), however the server behaves. Default ``defaultCheckTimeout``.
    public var checkTimeout: Duration
    /// The release channel to follow when the server has a release index (`stable` by default;
    /// see ``ReleasePolicy``).
    public var channel: String
    /// Releases outside this PEP 440 specifier set are ignored (`nil`: none are).
    public var pin: VersionSpecifierSet?
    /// When an update fetches only what changed (see ``DeltaPlan``). Default
    /// ``DifferentialUpdates/automatic``.
    public var differential: DifferentialUpdates
    /// Other servers with the same update folder (`--mirror`), tried in order when the one before
    /// fails: it cannot be reached, fails TLS, answers an error, or serves what does not verify (a
    /// stale or unsigned index, an archive that does not match). What comes from a mirror is
    /// verified exactly as what comes from the update URL, so a mirror needs no trust of its own.
    public var mirrors: [UpdateURL]
    /// For a mirror's updater: the update URL it mirrors.
    var mirrorOf: UpdateURL?

    /// 30 seconds.
    public static let defaultCheckTimeout = Duration.seconds(30)

    public init(
        archive: ArchiveName = .default,
        download: DownloadConfiguration = DownloadConfiguration(),
        extraction: ExtractionConfiguration = ExtractionConfiguration(),
        trust: TrustPolicy = TrustPolicy(),
        checkTimeout: Duration = UpdaterConfiguration.defaultCheckTimeout,
        channel: String = "stable",
        pin: VersionSpecifierSet? = nil,
        differential: DifferentialUpdates = .automatic,
        mirrors: [UpdateURL] = []
    ) {
        self.mirrors = mirrors
        self.differential = differential
        self.channel = channel
        self.pin = pin
        self.archive = archive
        self.download = download
        self.extraction = extraction
        self.trust = trust
        self.checkTimeout = checkTimeout
    }
}

/// When an update fetches only the archive's pieces that hold changed files.
public enum DifferentialUpdates: String, Sendable, Hashable, CaseIterable {
    /// When the server's manifest says where the pieces are and they are less than 80 % of the
    /// archive; else the whole archive.
    case automatic
    /// Whenever the manifest says where the pieces are, however much they add up to.
    case always
    /// Never: always the whole archive (for a server or proxy that mishandles Range).
    case never
}

/// What an update is doing, for progress displays.
public enum UpdateEvent: Sendable {
    /// An interrupted install was finished or undone first.
    case recovered(RecoveryOutcome)
    /// Asking the server at this update URL (its `release.json`, else its `version.txt`).
    case checking(URL)
    case checked(VersionChecker.Result)
    /// The archive is downloading (and extracting at the same time).
    case downloading(DownloadProgress)
    /// The archive has been downloaded and extracted into the staging folder.
    case extracted(ExtractionReport)
    /// Checking the archive's signature.
    case verifying(Version)
    case installing(Version)
    case installed(Version)
}

/// What an interrupted install left, and what recovery did about it.
public enum RecoveryOutcome: Sendable, Equatable {
    /// There was nothing to recover.
    case nothingToDo
    /// The install had not committed: the old version was restored.
    case rolledBack(version: String)
    /// The install had committed: its clean-up was finished.
    case rolledForward(version: String)
    /// Recovery failed, but the installed version is whole (see ``Updater/recoverForStart()``):
    /// what went wrong.
    case failedButWhole(String)
}

/// The result of ``Updater/update(onEvent:)``.
public enum UpdateOutcome: Sendable, Equatable {
    /// No newer version on the server.
    case upToDate(Version)
    /// The server's `version.txt` is not a version; nothing was changed.
    case serverInvalid(installed: Version)
    /// Installed `to` over `from`.
    case updated(from: Version, to: Version)
}

/// A downloaded, extracted update waiting to be installed; holds the update lock until it is
/// installed or discarded.
public final class PreparedUpdate: Sendable {
    /// The version it installs.
    public let version: Version
    /// The version installed when it was prepared.
    public let installed: Version
    /// The staging folder holding the new tree.
    public let staging: String
    /// SHA-256 of the archive, hex; empty for a differential update (no whole archive came).
    public let archiveHash: String
    /// The bytes downloaded: the archive's size, or a differential update's ranges.
    public let archiveBytes: Int64
    /// The key that signed the archive (minisign key id), when signatures are required.
    public let signedBy: String?
    /// Until when the server's signed `version.txt` holds, when freshness is required: an
    /// install after it is refused.
    public let freshUntil: Date?
    /// Where the archive came from.
    public let archiveURL: URL
    /// The release index's decision, when the server has an index.
    public let decision: ReleasePolicy.Decision?
    /// Whether the update cannot be declined or deferred (a minimum version, a required release,
    /// or a move off a yanked version).
    public var isMandatory: Bool { decision?.mandatory ?? false }
    fileprivate let lock: FileLock
    /// What the install leaves in place (a differential update).
    let overlay: Installer.Overlay?

    init(
        version: Version, installed: Version, staging: String, archiveHash: String, archiveBytes: Int64, signedBy: String?,
        freshUntil: Date?, archiveURL: URL, decision: ReleasePolicy.Decision?, lock: FileLock, overlay: Installer.Overlay? = nil
    ) {
        self.overlay = overlay
        self.archiveURL = archiveURL
        self.decision = decision
        self.version = version
        self.installed = installed
        self.staging = staging
        self.archiveHash = archiveHash
        self.archiveBytes = archiveBytes
        self.signedBy = signedBy
        self.freshUntil = freshUntil
        self.lock = lock
    }

    /// Removes the staged tree without installing it.
    public func discard() {
        try? TreeRemoval.remove(path: staging)
    }
}

/// The files of a version replaced by an install, kept so that it can be put back.
public struct PreviousVersion: Sendable, Hashable {
    /// The version they are.
    public let version: Version
    /// Where they are (inside the update folder).
    public let tree: String
}

/// Takes an installed app from its version to the server's newest, safely.
///
/// ```swift
/// let updater = try Updater(folder: AppFolder(path: "/opt/myapp"), url: UpdateURL("https://example.com/myapp/"))
/// switch try await updater.update(onEvent: { print($0) }) {
/// case .updated(let from, let to): print("updated \(from) → \(to)")
/// case .upToDate(let version): print("up to date (\(version))")
/// case .serverInvalid: print("the server's version.txt is invalid")
/// }
/// ```
///
/// The archive is extracted while it downloads, into a staging folder inside the update folder,
/// and hashed as it passes. Only then is it installed by a journaled swap:
/// after any crash the app is entirely the old version or entirely the new one. An update lock
/// keeps two updaters apart; the install waits for no one: while the app runs it is refused.
///
/// ### Security
/// HTTPS only, verified; archives are hostile until proven otherwise (see ``Extractor``); a
/// version older than the installed one is never installed. Out of scope here: who published the
/// archive (the signature check establishes that).
public final class Updater: Sendable {
    public let folder: AppFolder
    public let url: UpdateURL
    public let configuration: UpdaterConfiguration
    let downloader: Downloader
    private let extractor: Extractor
    private let checker: VersionChecker
    /// The mirrors, each an updater of its own (same folder and configuration, no mirrors).
    private let mirrorUpdaters: [Updater]
    let logger: Logger
    let audit: AuditLog

    /// - Parameters:
    ///   - folder: The app folder.
    ///   - url: The update folder on the server.
    ///   - configuration: Archive name, trust, caps.
    ///   - logger: Where the update's progress and warnings go.
    public init(
        folder: AppFolder, url: UpdateURL, configuration: UpdaterConfiguration = UpdaterConfiguration(),
        logger: Logger = Logger(label: "autoupdate.update")
    ) {
        self.folder = folder
        self.url = url
        self.configuration = configuration
        self.logger = logger
        var download = configuration.download
        download.allowsLocalFiles = url.isLocalFolder
        downloader = Downloader(configuration: download, logger: logger)
        var extraction = configuration.extraction
        // The install syncs the staged tree before its commit.
        extraction.startsWriteBack = true
        extractor = Extractor(configuration: extraction, logger: logger)
        checker = VersionChecker(
            folder: folder, url: url, downloader: downloader, trust: configuration.trust, timeout: configuration.checkTimeout,
            channel: configuration.channel, pin: configuration.pin, logger: logger, memoryKey: configuration.mirrorOf?.description)
        audit = AuditLog(folder: folder)
        var mirrored = configuration
        mirrored.mirrors = []
        mirrored.mirrorOf = url
        mirrored.trust.mirroredIdentity = configuration.trust.appIdentity(for: url)
        mirrorUpdaters = configuration.mirrors.map { Updater(folder: folder, url: $0, configuration: mirrored, logger: logger) }
    }

    /// The seed's `check_new`: whether a newer version is available (see ``VersionChecker``).
    public func checkNew() async throws -> Bool {
        try await failingOver { try await $0.checker.checkNew() }
    }

    /// Checks for a newer version, in detail (a queued version answers without a request, as in
    /// the seed, unless freshness is required).
    public func check() async throws -> VersionChecker.Result {
        try await failingOver { try await $0.checker.check() }
    }

    /// Checks with the server, whatever `.queue` says (see ``VersionChecker/checkServer()``).
    public func checkServer() async throws -> VersionChecker.Result {
        try await failingOver { try await $0.checker.checkServer() }
    }

    /// Runs `operation` against the update URL, then each mirror in turn while the one before
    /// failed as a source can (see ``UpdaterConfiguration/mirrors``); each failure is audited.
    private func failingOver<Result>(_ operation: (Updater) async throws -> Result) async throws -> Result {
        if url.isLocalFolder, !configuration.trust.requiresSignatures {
            throw AutoupdateError(
                .invalidArgument,
                "the update source \(quoted(url.url.path)) is a folder: nothing but a signature vouches for what it holds, so a public key is required (--public-key)"
            )
        }
        var failures: [String] = []
        for source in [self] + mirrorUpdaters {
            do {
                return try await operation(source)
            } catch let error as AutoupdateError where !mirrorUpdaters.isEmpty && Self.isSourceFailure(error) {
                audit.record(event: "source", url: source.url.url, status: error.httpStatus, decision: "failed", reason: error.message)
                failures.append("\(source.url.url.displayString): \(error.message)")
                if source !== mirrorUpdaters.last {
                    logger.attention(
                        "the update source failed; trying the next mirror",
                        metadata: ["update.url": "\(source.url.url.displayString)", "error": "\(error.message)"])
                } else {
                    throw AutoupdateError(
                        error.code, "every update source failed: \(failures.joined(separator: "; "))", underlying: error)
                }
            }
        }
        // Unreachable: the last source's failure throws above.
        throw AutoupdateError(.network, "no update source answered")
    }

    /// Whether `error` is the source's fault, which another source may not share: the network,
    /// TLS, an HTTP error, or content that does not verify. Not the app folder's, nor a person's.
    static func isSourceFailure(_ error: AutoupdateError) -> Bool {
        ![.locked, .processRunning, .fileSystem, .install, .invalidArgument, .invalidURL, .spawn].contains(error.code)
    }

    /// Checks, downloads, extracts and installs, as one step.
    ///
    /// - Throws: ``AutoupdateError``; whatever fails, the installed app is untouched (or, if the
    ///   failure struck during the install itself, restored).
    public func update(onEvent: @escaping @Sendable (UpdateEvent) -> Void = { _ in }) async throws -> UpdateOutcome {
        let (prepared, result) = try await failingOver { try await $0.prepareOrReport(onEvent: onEvent) }
        guard let prepared else {
            return result.outcome == .serverInvalid ? .serverInvalid(installed: result.installed) : .upToDate(result.installed)
        }
        try await install(prepared, onEvent: onEvent)
        return .updated(from: prepared.installed, to: prepared.version)
    }

    /// Recovers an interrupted install (under the update and install locks; an updater busy
    /// with the folder gets two seconds to finish).
    public func recover() async throws -> RecoveryOutcome {
        let lock = try await folder.waitingBriefly(for: folder.lockForUpdate)
        defer { withExtendedLifetime(lock) {} }
        return try await runOnBackgroundThread(name: "autoupdate.recover") { try self.recoverLocked() }
    }

    /// Recovers an interrupted install before the app starts. A failure that leaves the
    /// installed version whole is logged and reported as ``RecoveryOutcome/failedButWhole(_:)``,
    /// so that the app still starts: the install had committed (only its clean-up failed), or
    /// the journal is one autoupdate cannot act on (unreadable, or naming paths outside the app
    /// folder: nothing was changed). Updates stay refused until it is resolved.
    ///
    /// - Throws: ``AutoupdateError`` when an uncommitted install could not be rolled back: the
    ///   app folder may then hold a mix of two versions, which must not start.
    public func recoverForStart() async throws -> RecoveryOutcome {
        do {
            return try await recover()
        } catch let error as AutoupdateError where error.code == .install || error.code == .fileSystem {
            let installer = Installer(folder: folder, logger: logger)
            let journal: Installer.Journal?
            do {
                journal = try installer.readJournal()
            } catch {
                logger.attention("the install journal cannot be used; starting the app as it is", metadata: ["error": "\(error)"])
                return .failedButWhole((error as? AutoupdateError)?.message ?? "\(error)")
            }
            guard let journal, installer.isCommitted(journal) else { throw error }
            logger.attention("finishing a committed install failed; starting the new version", metadata: ["error": "\(error.message)"])
            return .failedButWhole(error.message)
        }
    }

    /// Whether an install was interrupted (a crash, a kill) and waits for ``recover()``.
    public var hasInterruptedInstall: Bool {
        FileManager.default.fileExists(atPath: folder.updateDirectory + "/journal.json")
    }

    private func recoverLocked() throws -> RecoveryOutcome {
        folder.removeStaleTemporaries()
        guard hasInterruptedInstall else {
            return .nothingToDo
        }
        let installLock = try folder.lockForInstall()
        defer { withExtendedLifetime(installLock) {} }
        var installer = Installer(folder: folder, logger: logger)
        // An install on trial that was interrupted after its commit still keeps the version it replaced.
        if let trial = try? folder.readTrial(), let journal = try? installer.readJournal(), journal.version == trial.candidate {
            installer.keepBackupAs = folder.updateDirectory + "/" + trial.previousTree
        }
        switch try installer.recover() {
        case .nothingToDo: return .nothingToDo
        case .rolledBack(let version): return .rolledBack(version: version)
        case .rolledForward(let version): return .rolledForward(version: version)
        }
    }

    /// Checks, then downloads and extracts a newer version into a staging folder, without
    /// touching the app.
    ///
    /// - Returns: The staged update, or `nil` when there is nothing newer (or the server's
    ///   version text is invalid). The update lock is held until it is installed or discarded.
    public func prepare(onEvent: @escaping @Sendable (UpdateEvent) -> Void = { _ in }) async throws -> PreparedUpdate? {
        try await failingOver { try await $0.prepareOrReport(onEvent: onEvent) }.prepared
    }

    /// ``prepare(onEvent:)``, also returning what the check found.
    private func prepareOrReport(
        onEvent: @escaping @Sendable (UpdateEvent) -> Void
    ) async throws -> (prepared: PreparedUpdate?, check: VersionChecker.Result) {
        // Briefly retried: a lock just released may linger in a child being spawned (see
        // `waitingBriefly`); a second updater at work still gets `.locked` after two seconds.
        let lock = try await folder.waitingBriefly(for: folder.lockForUpdate)
        let recovery = try recoverLocked()
        if recovery != .nothingToDo {
            onEvent(.recovered(recovery))
        }
        onEvent(.checking(url.url))
        // Always the server's word: a queued version is a hint that may be stale or withdrawn.
        let result = try await checker.checkServer()
        onEvent(.checked(result))
        guard let version = result.available else {
            return (nil, result)
        }
        removeLeftovers(keeping: result.release.map { Self.deltaFolder(for: $0, in: folder) })
        // With a release index, the release names its archive and where it is; else the
        // configured archive beside version.txt.
        let source: ArchiveSource
        if let release = result.release {
            source = ArchiveSource(
                name: try ArchiveName(release.archive), url: url.appending(release.path), size: release.size, unpacked: release.unpacked,
                sha256: release.sha256)
        } else {
            source = ArchiveSource(name: configuration.archive, url: url.appending(configuration.archive.name))
        }
        let archiveURL = source.url
        let movingOffYanked = result.index?.decision.reason == .yanked
        if !movingOffYanked, let highest = folder.readHighestVersion(), version < highest {
            let error = AutoupdateError(
                .rollback,
                "refusing \(version) from \(archiveURL.displayString): \(highest) was installed here before, and nothing older is installed again (rollback protection)"
            )
            try? folder.removeQueue()
            audit.record(event: "update", url: archiveURL, version: version.description, decision: "refused", reason: error.message)
            throw error
        }
        if let release = result.release, canTryDifferentially(release) {
            do {
                if let prepared = try await deltaDownload(version, release: release, checked: result, lock: lock, onEvent: onEvent) {
                    return (prepared, result)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as AutoupdateError where Self.isInterruption(error) {
                // The network failed, not the method: the whole archive would fail too. The pieces
                // fetched so far are kept; the next update resumes with them.
                audit.record(
                    event: "update", url: archiveURL, version: version.description, decision: "delta-interrupted", reason: error.message)
                try? folder.removeQueue()
                throw error
            } catch {
                // Whatever went wrong with the pieces, the whole archive is the answer: tried once.
                let failure = error as? AutoupdateError
                let message = failure?.message ?? "\(error)"
                logger.attention(
                    "the differential update failed; downloading the whole archive",
                    metadata: ["update.version.new": "\(version)", "error": "\(message)"])
                audit.record(
                    event: "update", url: archiveURL, status: failure?.httpStatus, version: version.description, decision: "delta-failed",
                    reason: message)
            }
        }
        do {
            let prepared = try await download(version, from: source, checked: result, lock: lock, onEvent: onEvent)
            return (prepared, result)
        } catch let error as AutoupdateError {
            // The announced version's archive failed: `.queue` must not keep answering for it.
            try? folder.removeQueue()
            throw error
        }
    }

    /// Where an archive is and what the server's word says of it.
    private struct ArchiveSource {
        var name: ArchiveName
        var url: URL
        /// From the release index: exact length, extracted size and SHA-256.
        var size: Int64? = nil
        var unpacked: Int64? = nil
        var sha256: String? = nil
    }

    /// Downloads, extracts and verifies `version` into a staging folder.
    private func download(
        _ version: Version, from source: ArchiveSource, checked result: VersionChecker.Result, lock: FileLock,
        onEvent: @escaping @Sendable (UpdateEvent) -> Void
    ) async throws -> PreparedUpdate {
        let archiveURL = source.url
        let signature = try await releaseSignature(for: version, archive: source.name, archiveURL: archiveURL)
        let staging = folder.updateDirectory + "/staging-\(UUID().uuidString)"
        logger.info("downloading", metadata: ["update.url": "\(archiveURL.displayString)", "update.version.new": "\(version)"])
        // A release with a manifest extracts into a folder kept across runs: what an interrupted
        // download (a network failure, a kill, a reboot) extracted is reused by the next run,
        // file by file against the manifest, and only the rest is fetched (see `deltaDownload`).
        let resumable = result.release.flatMap { $0.manifest != nil ? Self.partialFolder(for: $0, in: folder) : nil }
        if let resumable {
            try? TreeRemoval.remove(path: resumable)
            try FileManager.default.createDirectory(
                atPath: resumable.deletingLastPathComponent, withIntermediateDirectories: true)
        }
        let destination = resumable ?? staging
        var keptForResume = false

        // Before the extraction starts: nothing to stop if it fails.
        let digest = try SHA256Digest()
        // A signed release says how long its archive is and what it unpacks to: both exact caps,
        // so a server cannot fill the disk before the signature over the bytes is checked.
        let sink = extractor.start(format: source.name.format, to: destination, maxBytes: signature?.unpacked ?? source.unpacked)
        var verifier = signature?.verifier
        var bytes: Int64 = 0
        let report: ExtractionReport
        do {
            do {
                for try await chunk in downloader.bytes(from: archiveURL, expectedLength: signature?.size ?? source.size) {
                    chunk.bytes.withUnsafeBytes { digest.update($0) }
                    chunk.bytes.withUnsafeBytes { verifier?.update($0) }
                    bytes = chunk.progress.receivedBytes
                    onEvent(.downloading(chunk.progress))
                    try await sink.send(chunk.bytes)
                }
                try Task.checkCancellation()
            } catch {
                keptForResume = resumable != nil && ((error as? AutoupdateError).map { Self.isInterruption($0) } ?? false)
                try await sink.fail(error, keepingWhatIsWritten: keptForResume)
            }
            report = try await sink.finish()
            if destination != staging {
                try FileManager.default.moveItem(atPath: destination, toPath: staging)
            }
        } catch let error as AutoupdateError {
            if !keptForResume {
                try? TreeRemoval.remove(path: destination)
            }
            let failure = error.adding(context: "updating to \(version) from \(archiveURL.displayString)")
            audit.record(
                event: "update", url: archiveURL, status: error.httpStatus, bytes: bytes, version: version.description, decision: "refused",
                reason: failure.message)
            throw failure
        } catch {
            try? TreeRemoval.remove(path: destination)
            throw error
        }
        onEvent(.extracted(report))
        let hash = digest.finalize()
        if let expected = source.sha256, hash != expected {
            try? TreeRemoval.remove(path: staging)
            let error = AutoupdateError(
                .checksumMismatch,
                "refusing \(version) from \(archiveURL.displayString): its SHA-256 is \(hash), and the release index says \(expected)")
            audit.record(
                event: "update", url: archiveURL, bytes: bytes, hash: hash, version: version.description, decision: "refused",
                reason: error.message)
            throw error
        }
        var signedBy: String?
        if let signature, var verifier {
            onEvent(.verifying(version))
            do {
                signedBy = try verifier.finalize().key.keyIDHex
            } catch let error as AutoupdateError {
                try? TreeRemoval.remove(path: staging)
                let failure = error.adding(context: "refusing \(version) from \(archiveURL.displayString)")
                audit.record(
                    event: "update", url: archiveURL, bytes: bytes, hash: hash, keyID: signature.signature.keyIDHex,
                    version: version.description, decision: "refused", reason: failure.message)
                throw failure
            }
            logger.info("signature verified", metadata: ["update.version.new": "\(version)", "signature.key": "\(signedBy ?? "")"])
        }
        logger.info("staged", metadata: ["update.version.new": "\(version)", "download.bytes": "\(bytes)", "archive.sha256": "\(hash)"])
        return PreparedUpdate(
            version: version, installed: result.installed, staging: staging, archiveHash: hash, archiveBytes: bytes,
            signedBy: signedBy, freshUntil: result.freshUntil, archiveURL: archiveURL, decision: result.index?.decision, lock: lock)
    }

    /// With keys to trust: the archive's `.minisig`, checked before the download as far as it
    /// can be without the archive (a trusted key, an unaltered trusted comment naming this
    /// version, archive and app), with the sizes it signs. `nil` when signatures are not required.
    private func releaseSignature(
        for version: Version, archive: ArchiveName, archiveURL: URL
    ) async throws -> (signature: Minisign.Signature, verifier: Minisign.StreamVerifier, size: Int64?, unpacked: Int64?)? {
        guard configuration.trust.requiresSignatures else { return nil }
        let signatureURL = archiveURL.appendingPathExtension("minisig")
        var keyID: String?
        do {
            let signature = try await downloader.signature(at: signatureURL)
            keyID = signature.keyIDHex
            let verifier = try Minisign.StreamVerifier(signature, trusting: configuration.trust.publicKeys)
            let comment = ReleaseComment(signature.trustedComment)
            try comment.check(archive: archive.name, version: version)
            try comment.check(
                app: configuration.trust.appIdentity(for: url), pinned: configuration.trust.app != nil,
                signature: signatureURL.displayString)
            return (signature, verifier, comment.size, comment.unpacked)
        } catch let error as AutoupdateError {
            let failure = error.adding(context: "refusing \(version) from \(archiveURL.displayString)")
            audit.record(
                event: "update", url: signatureURL, status: error.httpStatus, keyID: keyID, version: version.description,
                decision: "refused", reason: failure.message)
            throw failure
        }
    }

    /// Installs a prepared update (journaled; refused while the app runs).
    ///
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/processRunning`` when the
    ///   app runs (the staged update is kept: try again once it has stopped), or `.install`
    ///   when the swap failed (the app folder was restored and the staged update discarded).
    public func install(_ prepared: PreparedUpdate, onEvent: @escaping @Sendable (UpdateEvent) -> Void = { _ in }) async throws {
        _ = try await install(prepared, keepingPrevious: false, onEvent: onEvent)
    }

    /// Installs a prepared update and keeps the version it replaces, for ``rollBack(to:reason:)``
    /// (what `autoupdate watch` does during its health window).
    ///
    /// - Returns: The kept version, or `nil` when nothing was installed before.
    public func installKeepingPrevious(
        _ prepared: PreparedUpdate, onEvent: @escaping @Sendable (UpdateEvent) -> Void = { _ in }
    ) async throws -> PreviousVersion? {
        try await install(prepared, keepingPrevious: true, onEvent: onEvent)
    }

    private func install(
        _ prepared: PreparedUpdate, keepingPrevious: Bool, onEvent: @escaping @Sendable (UpdateEvent) -> Void
    ) async throws -> PreviousVersion? {
        let installLock = try await folder.waitingBriefly(for: folder.lockForInstall)
        defer { withExtendedLifetime(installLock) {} }
        let archiveURL = prepared.archiveURL
        // Freshness again, at the moment it matters: a staged update may have waited (for the app
        // to stop, for a watch's swap) past the expiry of the version.txt that announced it.
        if configuration.trust.requireFreshVersion, (prepared.freshUntil ?? .distantPast) <= Date() {
            prepared.discard()
            let until =
                prepared.freshUntil.map { "was fresh until \($0.iso8601) and has expired since" }
                ?? "was not checked for freshness"
            let error = AutoupdateError(
                .signature, "refusing to install \(prepared.version): the server's signed version.txt \(until); the next check asks again")
            audit.record(
                event: "update", url: archiveURL, version: prepared.version.description, decision: "refused", reason: error.message)
            throw error
        }
        onEvent(.installing(prepared.version))
        let hadVersion = folder.readVersionDoc().value != nil
        let kept = folder.updateDirectory + "/" + Self.keptTreeName(for: prepared.installed)
        var installer = Installer(folder: folder, logger: logger)
        installer.keepBackupAs = keepingPrevious && hadVersion ? kept : nil
        do {
            try await runOnBackgroundThread(name: "autoupdate.install") { [installer] in
                try installer.install(staging: prepared.staging, version: prepared.version, overlay: prepared.overlay)
            }
        } catch let error as AutoupdateError {
            prepared.discard()
            audit.record(
                event: "update", url: archiveURL, bytes: prepared.archiveBytes, hash: prepared.archiveHash, keyID: prepared.signedBy,
                version: prepared.version.description, decision: "install-failed", reason: error.message)
            throw error
        }
        if prepared.version < prepared.installed, prepared.decision?.reason == .yanked {
            // The one downgrade there is, off a yanked version by a trusted index: the floor
            // comes down with it, and the yanked version is never installed here again.
            try? folder.markBad(prepared.installed)
            try? folder.resetHighestVersion(to: prepared.version)
        }
        audit.record(
            event: "update", url: archiveURL, bytes: prepared.archiveBytes, hash: prepared.archiveHash.isEmpty ? nil : prepared.archiveHash,
            keyID: prepared.signedBy, version: prepared.version.description, decision: "installed",
            reason: prepared.decision.map { "\($0.reason.rawValue) (channel \($0.channel))" }, why: prepared.decision?.reason.rawValue)
        onEvent(.installed(prepared.version))
        guard installer.keepBackupAs != nil, FileManager.default.fileExists(atPath: kept) else { return nil }
        return PreviousVersion(version: prepared.installed, tree: kept)
    }

    /// Puts a kept version back (journaled, as any install), and marks the version it replaces
    /// as bad so that it is not installed again (a newer one is).
    ///
    /// - Parameters:
    ///   - previous: The kept version, as ``installKeepingPrevious(_:onEvent:)`` returned it.
    ///   - reason: Why, for the log and the audit trail.
    public func rollBack(to previous: PreviousVersion, reason: String) async throws {
        try await rollBack(to: previous, reason: reason, keepingReplaced: false)
    }

    /// ``rollBack(to:reason:)``; with `keepingReplaced`, the version it replaces is kept in
    /// turn (an explicit rollback among kept versions).
    func rollBack(to previous: PreviousVersion, reason: String, keepingReplaced: Bool) async throws {
        let lock = try folder.lockForUpdate()
        defer { withExtendedLifetime(lock) {} }
        let installLock = try await folder.waitingBriefly(for: folder.lockForInstall)
        defer { withExtendedLifetime(installLock) {} }
        let bad = folder.readVersionDoc().value
        // A trial's rollback is recorded as begun first: a kill during it is finished by the next start.
        if var trial = try? folder.readTrial(), trial.candidate == bad?.description, !trial.rollingBack {
            trial.rollingBack = true
            try folder.writeTrial(trial)
        }
        // The kept tree is consumed: the install moves its files in.
        var installer = Installer(folder: folder, logger: logger)
        installer.markBadOnCommit = bad
        if keepingReplaced, let bad {
            installer.keepBackupAs = folder.updateDirectory + "/" + Self.keptTreeName(for: bad)
        }
        try await runOnBackgroundThread(name: "autoupdate.install") { [installer] in
            try installer.install(staging: previous.tree, version: previous.version)
        }
        if let bad {
            try folder.markBad(bad)
        }
        try? folder.removeTrial()
        audit.record(
            event: "rollback", version: previous.version.description, decision: "rolled-back",
            reason: "\(bad.map { "\($0) " } ?? "")\(reason)")
        logger.attention(
            "rolled back",
            metadata: [
                "update.version.bad": "\(bad.map(\.description) ?? "?")", "update.version": "\(previous.version)", "reason": "\(reason)",
            ])
    }

    /// Removes a kept version that is no longer needed.
    public func discard(_ previous: PreviousVersion) {
        try? TreeRemoval.remove(path: previous.tree)
    }

    /// Staging folders of updates that never installed (a crash, a kill): they can go.
    /// Removes what earlier updates left; `kept` (the current release's fetched pieces) stays.
    private func removeLeftovers(keeping kept: String? = nil) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.updateDirectory)) ?? []
        // A trial in progress needs its kept version until it is decided.
        // Kept versions (`previous-…`) stay: a trial needs its own, and `watch --keep` keeps
        // others for `autoupdate rollback`; confirming a trial prunes them.
        for name in names
        where name.hasPrefix("staging-") || name.hasPrefix("backup-")
            || (name.hasPrefix("delta-") && folder.updateDirectory + "/" + name != kept)
        {
            try? TreeRemoval.remove(path: folder.updateDirectory + "/" + name)
        }
    }
}
