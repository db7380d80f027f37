#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

extension Updater {
    /// What an update to the check's candidate would download: the bytes, and whether they are
    /// a differential update's ranges (see ``DeltaPlan``) or the whole archive. `nil` when there
    /// is no candidate, or its size is unknown (a server without a release index).
    ///
    /// It reads the candidate's manifest and hashes the installed files, as the update will; a
    /// manifest that cannot be read means the whole archive, as it would for the update.
    public func plannedDownload(for result: VersionChecker.Result) async throws -> (bytes: Int64, differential: Bool)? {
        guard let release = result.release else { return nil }
        guard canTryDifferentially(release) else { return (release.size, false) }
        do {
            guard let planned = try await deltaPlan(for: release), isWorthwhile(planned) else {
                return (release.size, false)
            }
            return (planned.plan.bytesToFetch, true)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The update would fall back to the whole archive too.
            return (release.size, false)
        }
    }

    /// Whether an update to `release` may go differentially: it has a manifest, and something is
    /// installed or an interrupted download left files to reuse.
    func canTryDifferentially(_ release: ReleaseIndex.Release) -> Bool {
        configuration.differential != .never && release.manifest != nil
            && (folder.readVersionDoc().value != nil
                || FileManager.default.fileExists(atPath: Self.partialFolder(for: release, in: folder)))
    }

    /// A differential update's plan and what it reuses.
    struct PlannedDelta: Sendable {
        var manifest: ReleaseManifest
        var plan: DeltaPlan
        /// Installed files that hold the new release's bytes, as they were when read.
        var installed: [String: InstalledFile]
        /// Files an interrupted download extracted that hold the release's bytes (and that the
        /// installed tree lacks).
        var resumed: Set<String>
    }

    /// Pieces are worth fetching when they are less than most of the archive; always when the
    /// user asks, or when they resume an interrupted download (which would otherwise start over).
    private func isWorthwhile(_ planned: PlannedDelta) -> Bool {
        planned.plan.isWorthwhile || configuration.differential == .always || !planned.resumed.isEmpty
    }

    /// The candidate's manifest (checked against the index) and the plan against what is
    /// installed and what an interrupted download left; `nil` when the release has no manifest
    /// or the manifest no offsets.
    func deltaPlan(for release: ReleaseIndex.Release) async throws -> PlannedDelta? {
        guard let reference = release.manifest else { return nil }
        let manifestURL = url.appending(reference.path)
        guard case .modified(let body, _) = try await downloader.fetch(manifestURL, maxBytes: Int64(ReleaseManifest.maximumBytes))
        else {
            throw AutoupdateError(.httpStatus, "\(manifestURL.displayString) answered 304 to an unconditional request")
        }
        let manifest = try ReleaseManifest.decode(body, matching: reference, source: manifestURL.displayString)
        guard manifest.version == release.version, manifest.archive == release.archive else {
            throw AutoupdateError(
                .checksumMismatch,
                "\(manifestURL.displayString) describes \(manifest.archive) \(manifest.version), not \(release.archive) \(release.version)")
        }
        let files = manifest.files.filter { $0.type == .file }
        let installed = folder.readVersionDoc().value != nil ? try await Self.scan(files, at: folder.path) : [:]
        let partial = Self.partialFolder(for: release, in: folder)
        var resumed: Set<String> = []
        if FileManager.default.fileExists(atPath: partial) {
            resumed = Set(try await Self.scan(files.filter { installed[$0.path] == nil }, at: partial).keys)
        }
        return DeltaPlan.make(manifest: manifest, archiveSize: release.size, reusable: Set(installed.keys).union(resumed)).map {
            PlannedDelta(manifest: manifest, plan: $0, installed: installed, resumed: resumed)
        }
    }

    /// ``InstalledTree/scan(_:at:)`` on every core: the files, largest first, dealt to one
    /// thread per core so that each hashes about the same number of bytes.
    private static func scan(_ entries: [ReleaseManifest.Entry], at path: String) async throws -> [String: InstalledFile] {
        let files = entries.filter { $0.type == .file && $0.size != nil }.sorted { $0.size! > $1.size! }
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, files.count / 8))
        var shares = [[ReleaseManifest.Entry]](repeating: [], count: threads)
        var loads = [Int64](repeating: 0, count: threads)
        for file in files {
            let least = loads.indices.min { loads[$0] < loads[$1] }!
            shares[least].append(file)
            loads[least] += file.size!
        }
        return try await withThrowingTaskGroup(of: [String: InstalledFile].self) { group in
            for share in shares {
                group.addTask { try await runOnBackgroundThread(name: "autoupdate.hash") { InstalledTree.scan(share, at: path) } }
            }
            var all: [String: InstalledFile] = [:]
            for try await found in group {
                all.merge(found) { first, _ in first }
            }
            return all
        }
    }

    /// A differential update: the new release's manifest against the installed tree, then only
    /// the archive's byte ranges that hold changed or new files (see ``DeltaPlan``), decoded and
    /// verified file by file against the manifest's SHA-256 into a staging folder.
    ///
    /// - Returns: The staged update, or `nil` when a delta is not worth it (most of the archive
    ///   would be fetched) or not possible (a manifest without offsets).
    /// - Throws: ``AutoupdateError`` when a piece fails (a server that does not honour Range, a
    ///   byte that does not verify): the caller downloads the whole archive instead.
    func deltaDownload(
        _ version: Version, release: ReleaseIndex.Release, checked result: VersionChecker.Result, lock: FileLock,
        onEvent: @escaping @Sendable (UpdateEvent) -> Void
    ) async throws -> PreparedUpdate? {
        guard let planned = try await deltaPlan(for: release), isWorthwhile(planned) else {
            return nil
        }
        let (manifest, plan, installed) = (planned.manifest, planned.plan, planned.installed)
        // Reused files stay where they are when the install can leave them (listed as the
        // installed version's, with the new mode); the others are copied into staging.
        let keptInPlace = InstalledTree.keptInPlace(installed, manifest: manifest, listed: Set(folder.readFileList().value ?? []))
        let copied = plan.reused.filter { keptInPlace[$0] == nil && !planned.resumed.contains($0) }
        let format = try ArchiveName(release.archive).format
        let folder = self.folder
        let archiveURL = url.appending(release.path)
        logger.info(
            "differential update",
            metadata: [
                "update.version.new": "\(version)", "delta.bytes": "\(plan.bytesToFetch)", "archive.bytes": "\(release.size)",
                "delta.files": "\(plan.fetched.count)", "delta.reused": "\(plan.reused.count)",
            ])

        // The pieces are kept across runs, by release: an update interrupted (a network failure,
        // a kill, a reboot) resumes with what it has; they are checked file by file when staged.
        let work = Self.deltaFolder(for: release, in: folder)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let rangeFiles = plan.ranges.map { work + "/range-\($0.offset)-\($0.length)" }
        var fetched: Int64 = 0
        // Ranges not begun go in one request where the server answers several ranges at once
        // (nginx does; S3 and some CDNs send the whole file, which stops it at its headers).
        let untouched = zip(plan.ranges, rangeFiles).filter { range, file in
            Self.size(of: file) != range.length && (Self.size(of: file + ".part") ?? 0) == 0
        }
        if untouched.count >= 2 {
            do {
                fetched += try await fetchParts(untouched, of: archiveURL, completeLength: release.size) { received, rate in
                    onEvent(.downloading(DownloadProgress(receivedBytes: received, totalBytes: plan.bytesToFetch, bytesPerSecond: rate)))
                }
            } catch let error as AutoupdateError where error.code == .rangeNotHonoured {
                logger.info(
                    "the server does not answer several ranges at once; asking for them one by one",
                    metadata: ["update.url": "\(archiveURL.displayString)", "error": "\(error.message)"])
            }
        }
        for (range, file) in zip(plan.ranges, rangeFiles) {
            let partial = file + ".part"
            if Self.size(of: file) == range.length {
                continue
            }
            var have = Self.size(of: partial) ?? 0
            if have >= range.length {
                try? FileManager.default.removeItem(atPath: partial)
                have = 0
            }
            if have == 0 {
                guard FileManager.default.createFile(atPath: partial, contents: nil) else { throw AutoupdateError.unreadable(partial) }
            }
            guard let output = OpenFile(forWritingAtPath: partial) else { throw AutoupdateError.unreadable(partial) }
            defer { try? output.close() }
            try output.seekToEnd()
            let first = range.offset + have
            for try await chunk in downloader.bytes(from: archiveURL, range: first...(range.end - 1), completeLength: release.size) {
                try output.write(contentsOf: chunk.bytes)
                onEvent(
                    .downloading(
                        DownloadProgress(
                            receivedBytes: fetched + chunk.progress.receivedBytes, totalBytes: plan.bytesToFetch,
                            bytesPerSecond: chunk.progress.bytesPerSecond)))
            }
            try output.synchronize()
            try FileManager.default.moveItem(atPath: partial, toPath: file)
            fetched += range.length - have
        }
        try Task.checkCancellation()

        let staging = folder.updateDirectory + "/staging-\(UUID().uuidString)"
        let installedPath = folder.path
        let partial = Self.partialFolder(for: release, in: folder)
        do {
            try await runOnBackgroundThread(name: "autoupdate.delta") { [rangeFiles] in
                try DeltaStager.build(
                    manifest: manifest, plan: plan, copying: copied, keeping: Set(keptInPlace.keys), format: format,
                    rangeFiles: rangeFiles, installed: installedPath, staging: staging, scratch: work + "/member",
                    resuming: (planned.resumed, from: partial))
            }
        } catch {
            // Pieces that did not verify are not kept for another try.
            try? TreeRemoval.remove(path: work)
            throw error
        }
        try? TreeRemoval.remove(path: work)
        logger.info(
            "staged differentially",
            metadata: ["update.version.new": "\(version)", "download.bytes": "\(fetched)", "archive.bytes": "\(release.size)"])
        audit.record(
            event: "update", url: archiveURL, bytes: fetched, version: version.description, decision: "delta-staged",
            reason:
                "fetched \(fetched) of \(release.size) bytes (\(plan.ranges.count) range\(plan.ranges.count == 1 ? "" : "s")): \(plan.fetched.count) files, \(plan.reused.count) reused\(planned.resumed.isEmpty ? "" : " (\(planned.resumed.count) from an interrupted download)")"
        )
        return PreparedUpdate(
            version: version, installed: result.installed, staging: staging, archiveHash: "", archiveBytes: fetched, signedBy: nil,
            freshUntil: result.freshUntil, archiveURL: archiveURL, decision: result.index?.decision, lock: lock,
            overlay: Installer.Overlay(kept: keptInPlace, folderModes: manifest.folderModes))
    }

    /// Fetches `ranges` of `url` with one request, each part into its file (through `.part`, as
    /// the one-by-one requests do, so that an interruption resumes). Every part must be one of
    /// the ranges asked for, of a file of `completeLength` bytes.
    ///
    /// - Returns: The bytes written.
    /// - Throws: ``AutoupdateError/Code/rangeNotHonoured`` when the server answers otherwise (one
    ///   range, the whole file, a part not asked for, a malformed body): the parts done are kept.
    private func fetchParts(
        _ ranges: [(DeltaPlan.ByteRange, String)], of url: URL, completeLength: Int64,
        progress: (_ received: Int64, _ bytesPerSecond: Double) -> Void
    ) async throws -> Int64 {
        var pending = Dictionary(ranges.map { ($0.0.offset, $0) }, uniquingKeysWith: { first, _ in first })
        var parser = MultipartByteranges()
        var current: (range: DeltaPlan.ByteRange, file: String, output: OpenFile)?
        var written: Int64 = 0
        defer { try? current?.output.close() }
        func notHonoured(_ reason: String) -> AutoupdateError {
            AutoupdateError(.rangeNotHonoured, "downloading \(url.displayString): \(reason)")
        }
        for try await chunk in downloader.bytes(from: url, ranges: ranges.map { $0.0.offset...($0.0.end - 1) }) {
            do {
                try chunk.bytes.withUnsafeBytes { bytes in
                    try parser.consume(bytes) { event in
                        switch event {
                        case .part(let answer):
                            guard let (range, file) = pending.removeValue(forKey: answer.first), answer.last == range.end - 1,
                                answer.completeLength == nil || answer.completeLength == completeLength
                            else {
                                throw notHonoured("the server answered bytes \(answer.first)-\(answer.last), which were not asked for")
                            }
                            let partial = file + ".part"
                            guard FileManager.default.createFile(atPath: partial, contents: nil),
                                let output = OpenFile(forWritingAtPath: partial)
                            else { throw AutoupdateError.unreadable(partial) }
                            current = (range, file, output)
                        case .data(let data):
                            try current?.output.write(contentsOf: data)
                            written += Int64(data.count)
                        case .partEnded:
                            guard let done = current else { return }
                            current = nil
                            try done.output.synchronize()
                            try done.output.close()
                            try FileManager.default.moveItem(atPath: done.file + ".part", toPath: done.file)
                        }
                    }
                }
            } catch let malformed as MultipartByteranges.Malformed {
                throw notHonoured("its multipart answer is malformed (\(malformed.reason))")
            }
            progress(written, chunk.progress.bytesPerSecond)
        }
        do {
            try parser.finish()
        } catch let malformed as MultipartByteranges.Malformed {
            throw notHonoured("its multipart answer is malformed (\(malformed.reason))")
        }
        guard pending.isEmpty else { throw notHonoured("its multipart answer lacks \(pending.count) of the ranges asked for") }
        return written
    }

    /// Where a release's fetched pieces wait, in the update folder.
    static func deltaFolder(for release: ReleaseIndex.Release, in folder: AppFolder) -> String {
        folder.updateDirectory + "/delta-" + release.sha256.prefix(16)
    }

    /// Where a full download of a release with a manifest extracts: what it holds after an
    /// interruption is reused by the next run.
    static func partialFolder(for release: ReleaseIndex.Release, in folder: AppFolder) -> String {
        deltaFolder(for: release, in: folder) + "/partial"
    }

    /// The network failed, not the method: the pieces so far are kept for the next run.
    static func isInterruption(_ error: AutoupdateError) -> Bool {
        [.network, .timeout, .tls].contains(error.code)
    }

    private static func size(of path: String) -> Int64? {
        FileManager.default.size(ofItemAtPath: path)
    }
}
