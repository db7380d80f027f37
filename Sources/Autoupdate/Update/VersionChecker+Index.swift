#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

extension VersionChecker {
    /// What is remembered of the index between checks, in the update folder.
    private struct IndexMemory: Codable {
        var url: String
        /// The highest serial seen from this URL (replay protection).
        var serial: UInt64
        /// The validator of the last answer, for a conditional request.
        var validator: HTTPValidator?
    }

    private var indexMemoryPath: String { folder.updateDirectory + "/release-index.json" }
    /// The last index fetched and accepted, byte for byte (the body a `304` stands for).
    private var indexCopyPath: String { folder.updateDirectory + "/release.json" }

    /// Reads the server's `release.json` and decides with ``ReleasePolicy``.
    ///
    /// - Returns: `nil` when the server has no index (404 or 410): the caller reads `version.txt`.
    /// - Throws: ``AutoupdateError`` for an index that cannot be fetched, is invalid, unsigned or
    ///   badly signed with a key pinned, or older than one seen before.
    func checkIndex(installed: Version) async throws -> Result? {
        let indexURL = url.appending(Publisher.indexName)
        let memory = readIndexMemory()
        let fetched: FetchedIndex
        do {
            fetched = try await withTimeout(timeout, "checking \(indexURL.displayString)") {
                try await self.fetchIndex(indexURL, memory: memory)
            }
        } catch is NotAnIndex {
            logger.attention(
                "the server answers \(Publisher.indexName) with something that is not JSON (a host serving a page for missing files?); reading version.txt",
                metadata: ["update.url": "\(indexURL.displayString)"])
            return nil
        } catch let error as AutoupdateError where error.httpStatus == 404 || error.httpStatus == 410 {
            if trust.requiresSignatures, let memory {
                let refusal = AutoupdateError(
                    .signature,
                    "\(indexURL.displayString) is gone (\(error.httpStatus ?? 404)) after serial \(memory.serial) was seen; a server that drops its signed index is not followed back to version.txt"
                )
                audit.record(event: "check", url: indexURL, status: error.httpStatus, decision: "refused", reason: refusal.message)
                throw refusal
            }
            return nil
        } catch let error as AutoupdateError {
            audit.record(event: "check", url: indexURL, status: error.httpStatus, decision: "failed", reason: error.message)
            throw error
        }

        let index: ReleaseIndex
        do {
            index = try ReleaseIndex.decode(fetched.bytes, source: indexURL.displayString)
            if let memory, index.serial < memory.serial {
                throw AutoupdateError(
                    .rollback,
                    "\(indexURL.displayString) has serial \(index.serial), older than serial \(memory.serial) seen before (a replayed or stale index); nothing is installed from it"
                )
            }
        } catch let error as AutoupdateError {
            audit.record(event: "check", url: indexURL, status: fetched.status, decision: "refused", reason: error.message)
            throw error
        }
        if fetched.status != 304 || memory?.serial != index.serial {
            rememberIndex(fetched.bytes, serial: index.serial, validator: fetched.validator ?? memory?.validator)
        }

        let policy = ReleasePolicy(channel: channel, pin: pin, installID: try folder.installID())
        let decision = policy.decide(
            index: index, installed: folder.readVersionDoc().value, floor: folder.readHighestVersion(), bad: folder.readBadVersions(),
            trustedForDowngrade: fetched.signed)
        if !index.channels.contains(channel) {
            logger.attention(
                "the release index has no channel \(quoted(channel)); following \(index.channels[0])",
                metadata: ["update.url": "\(indexURL.displayString)", "update.channels": "\(index.channels.joined(separator: ","))"])
        }
        let answer = Result.IndexAnswer(serial: index.serial, signed: fetched.signed, decision: decision)
        let rollout = decision.inNewestRollout.map { $0 ? "in" : "out" }
        let detail = "serial \(index.serial), channel \(channel), \(decision.reason.rawValue)" + (rollout.map { ", rollout \($0)" } ?? "")

        guard let candidate = decision.candidate else {
            try folder.removeQueue()
            try folder.appendCheckLog(old: installed, outcome: .upToDate)
            audit.record(
                event: "check", url: indexURL, status: fetched.status, decision: "up-to-date", reason: detail, serial: index.serial,
                channel: channel, rollout: rollout, why: decision.reason.rawValue)
            return Result(
                installed: installed, available: nil, outcome: .upToDate, fromQueue: false, notModified: fetched.status == 304,
                freshUntil: fetched.freshUntil, index: answer)
        }
        if candidate.version > installed {
            try folder.writeQueue(candidate.version)
        } else {
            try folder.removeQueue()
        }
        try folder.appendCheckLog(old: installed, outcome: .newVersion(candidate.version))
        audit.record(
            event: "check", url: indexURL, status: fetched.status, version: candidate.version.description, decision: "update-available",
            reason: detail, serial: index.serial, channel: channel, rollout: rollout, why: decision.reason.rawValue)
        logger.info(
            "update available",
            metadata: [
                "update.version.old": "\(installed)", "update.version.new": "\(candidate.version)",
                "update.reason": "\(decision.reason.rawValue)",
            ])
        return Result(
            installed: installed, available: candidate.version, outcome: .newVersion(candidate.version), fromQueue: false,
            notModified: fetched.status == 304, freshUntil: fetched.freshUntil, index: answer)
    }

    /// A `200` for `release.json` whose body is not a JSON object.
    private struct NotAnIndex: Error {}

    private struct FetchedIndex: Sendable {
        var bytes: [UInt8]
        var status: Int
        /// The validator of a `200` answer.
        var validator: HTTPValidator?
        var signed = false
        var freshUntil: Date?
    }

    /// Fetches the index (conditionally, when a copy is kept) and, with keys, its signature.
    private func fetchIndex(_ indexURL: URL, memory: IndexMemory?) async throws -> FetchedIndex {
        let kept = memory != nil ? FileManager.default.contents(atPath: indexCopyPath).map { [UInt8]($0) } : nil
        var fetched: FetchedIndex
        switch try await downloader.fetch(
            indexURL, validator: kept == nil ? nil : memory?.validator, maxBytes: Int64(ReleaseIndex.maximumBytes))
        {
        case .notModified:
            guard let kept else {
                throw AutoupdateError(.httpStatus, "\(indexURL.displayString) answered 304 to a request that kept no copy")
            }
            fetched = FetchedIndex(bytes: kept, status: 304)
        case .modified(let body, let validator):
            fetched = FetchedIndex(bytes: body, status: 200, validator: validator)
            // Some hosts answer every missing path with a page (200): before any index was seen
            // here, that means none.
            if memory == nil, body.first(where: { !" \t\r\n".utf8.contains($0) }) != UInt8(ascii: "{") {
                throw NotAnIndex()
            }
        }
        guard trust.requiresSignatures else {
            return fetched
        }
        let bytes = fetched.bytes
        fetched.signed = true
        // A kept copy was verified when it was fetched; freshness needs the signature every time.
        if fetched.status == 304, !trust.requireFreshVersion {
            return fetched
        }
        let signatureURL = url.appending(Publisher.indexName + ".minisig")
        let signature = try await downloader.signature(at: signatureURL)
        let verified: Minisign.Verified
        do {
            verified = try Minisign.verify(signature, prehash: nil, message: bytes, trusting: trust.publicKeys)
        } catch let error as AutoupdateError {
            throw error.adding(context: "checking \(signatureURL.displayString) against \(Publisher.indexName)")
        }
        let comment = ReleaseComment(verified.trustedComment)
        if let file = comment.file, file != Publisher.indexName {
            throw AutoupdateError(
                .signature, "\(signatureURL.displayString) is a signature for \(quoted(file)), not for \(Publisher.indexName)")
        }
        try comment.check(app: trust.appIdentity(for: url), pinned: trust.app != nil, signature: signatureURL.displayString)
        if let signedSerial = comment.serial, let index = try? ReleaseIndex.decode(bytes), index.serial != signedSerial {
            throw AutoupdateError(
                .signature, "\(signatureURL.displayString) is for serial \(signedSerial), and the index says \(index.serial)")
        }
        if trust.requireFreshVersion {
            fetched.freshUntil = try freshness(of: comment, signatureURL: signatureURL, signedFile: Publisher.indexName)
        }
        return fetched
    }

    private func readIndexMemory() -> IndexMemory? {
        guard let data = FileManager.default.contents(atPath: indexMemoryPath),
            let memory = try? JSONDecoder().decode(IndexMemory.self, from: data), memory.url == memoryKey
        else { return nil }
        return memory
    }

    /// Keeps the accepted index and raises the remembered serial (never lowers it).
    private func rememberIndex(_ bytes: [UInt8], serial: UInt64, validator: HTTPValidator?) {
        let serial = max(serial, readIndexMemory()?.serial ?? 0)
        try? FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
        do {
            try AtomicFile.write(bytes, to: indexCopyPath)
            let memory = IndexMemory(url: memoryKey, serial: serial, validator: validator)
            try AtomicFile.write(Array(try JSONEncoder().encode(memory)), to: indexMemoryPath)
        } catch {
            logger.attention("cannot remember the release index", metadata: ["error": "\(error)"])
        }
    }
}
