#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

extension Updater {
    /// Installs a prepared update on **trial**: the trial record first (durably), then the
    /// journaled install keeping the version it replaces. Until ``confirmTrial(_:keeping:)``, any start
    /// by `watch` or `run` goes through ``resolveTrialForStart()``, which rolls back a candidate
    /// whose starts are used up.
    ///
    /// - Parameters:
    ///   - prepared: The update.
    ///   - starts: How many starts the candidate gets before it must have been confirmed
    ///     (this one included; `--trial-attempts`).
    ///   - onEvent: Progress, as for ``install(_:onEvent:)``.
    /// - Returns: The kept version, or `nil` when nothing was installed before (no trial then).
    public func installOnTrial(
        _ prepared: PreparedUpdate, starts: Int = 1, onEvent: @escaping @Sendable (UpdateEvent) -> Void = { _ in }
    ) async throws -> PreviousVersion? {
        guard folder.readVersionDoc().value != nil else {
            return try await installKeepingPrevious(prepared, onEvent: onEvent)
        }
        try folder.writeTrial(
            Trial(
                candidate: prepared.version.description, previous: prepared.installed.description,
                previousTree: Self.keptTreeName(for: prepared.installed), starts: 1, maxStarts: max(1, starts)))
        do {
            guard let kept = try await installKeepingPrevious(prepared, onEvent: onEvent) else {
                try? folder.removeTrial()
                return nil
            }
            return kept
        } catch {
            // The install rolled itself back: no trial.
            try? folder.removeTrial()
            throw error
        }
    }

    /// The candidate passed its trial: the record goes; the kept version stays among the
    /// `keeping` newest kept versions (for ``rollBack(toKept:waitingFor:)``), or goes.
    ///
    /// - Parameters:
    ///   - previous: The kept version, as ``installOnTrial(_:starts:onEvent:)`` or
    ///     ``resolveTrialForStart()`` gave it; `nil` when there is none.
    ///   - keeping: How many kept versions stay in the update folder (`--keep`), the lowest
    ///     versions going first; 0 keeps none.
    public func confirmTrial(_ previous: PreviousVersion?, keeping: Int = 0) {
        do {
            if let trial = try folder.readTrial() {
                try folder.removeTrial()
                audit.record(event: "trial", version: trial.candidate, decision: "confirmed", reason: "after \(trial.starts) start(s)")
            }
        } catch {
            // The record stays, and so does the kept version it names.
            logger.attention("cannot end the trial; the next start decides it", metadata: ["error": "\(error)"])
            return
        }
        if let previous, keeping < 1 {
            discard(previous)
        }
        for extra in keptVersions().dropLast(max(0, keeping)) {
            discard(extra)
        }
    }

    /// The versions kept in the update folder, lowest first.
    public func keptVersions() -> [PreviousVersion] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.updateDirectory)) ?? []
        return names.compactMap { name -> PreviousVersion? in
            guard name.hasPrefix("previous-"), let version = try? Version(String(name.dropFirst("previous-".count))),
                name == Self.keptTreeName(for: version)
            else { return nil }
            return PreviousVersion(version: version, tree: folder.updateDirectory + "/" + name)
        }.sorted { $0.version < $1.version }
    }

    /// Puts a kept version back at a person's request (`autoupdate rollback`): journaled as every
    /// install; the version it replaces is kept in turn and marked bad (not installed again by
    /// an update; a rollback to it stays possible). The highest-version floor does not apply: this
    /// is a local, explicit choice, and the audit trail records it.
    ///
    /// When a `watch` runs the app and takes requests, it is asked to do it (it stops the app,
    /// rolls back and starts the version put back; see ``AppFolder/runningWatch()``).
    ///
    /// - Parameters:
    ///   - version: The kept version to put back; `nil` for the highest kept version below the
    ///     installed one (else the highest kept).
    ///   - timeout: How long a running watch has to answer (it stops the app first, which takes
    ///     up to its grace).
    /// - Returns: The version replaced and the one put back.
    /// - Throws: ``AutoupdateError`` `.invalidArgument` when no such version is kept or nothing is
    ///   installed; `.processRunning` while the app runs without a watch that takes requests
    ///   (stop it first); `.timeout` when the watch did not answer in time.
    public func rollBack(
        toKept version: Version? = nil, waitingFor timeout: Duration = .seconds(60)
    ) async throws -> (
        from: Version, to: Version
    ) {
        if let watch = folder.runningWatch() {
            guard watch.takesRequests else {
                throw AutoupdateError(
                    .processRunning,
                    "the app in \(quoted(folder.path)) runs under a watch (pid \(watch.pid)) that takes no rollback requests: stop it first"
                )
            }
            return try await askWatchToRollBack(pid: watch.pid, to: version, within: timeout)
        }
        return try await rollBackHere(toKept: version)
    }

    /// The kept version a rollback to `version` puts back.
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` when there is none (naming what is kept).
    func rollbackTarget(toKept version: Version?) throws -> (installed: Version, target: PreviousVersion) {
        guard let installed = folder.readVersionDoc().value else {
            throw AutoupdateError(.invalidArgument, "nothing is installed in \(quoted(folder.path)): there is nothing to roll back")
        }
        let kept = keptVersions().filter { $0.version != installed }
        let target: PreviousVersion?
        if let version {
            target = kept.first { $0.version == version }
        } else {
            target = kept.last { $0.version < installed } ?? kept.last
        }
        guard let target else {
            let have =
                kept.isEmpty
                ? "none is kept (watch --keep N keeps some)" : "kept: \(kept.map(\.version.description).joined(separator: ", "))"
            throw AutoupdateError(
                .invalidArgument, "no kept version \(version.map { "\($0) " } ?? "")to roll back to in \(quoted(folder.path)); \(have)")
        }
        return (installed, target)
    }

    /// ``rollBack(toKept:waitingFor:)`` in this process (the app must not run).
    func rollBackHere(toKept version: Version?) async throws -> (from: Version, to: Version) {
        let (installed, target) = try rollbackTarget(toKept: version)
        do {
            try await rollBack(to: target, reason: "asked for (autoupdate rollback)", keepingReplaced: true)
        } catch let error as AutoupdateError where error.code == .processRunning {
            throw AutoupdateError(
                .processRunning, "the app in \(quoted(folder.path)) is running: stop it (or its watch) first, then roll back")
        }
        return (installed, target.version)
    }

    /// Decides an unconfirmed trial before the app starts (`watch` and `run` call it after
    /// ``recoverForStart()``): another start for the candidate while it has starts left, else
    /// the kept version back and the candidate marked bad. Never keeps the installed version
    /// from starting: a record that cannot be used is removed, naming why.
    public func resolveTrialForStart() async throws -> TrialResolution {
        let trial: Trial?
        do {
            trial = try folder.readTrial()
        } catch let error as AutoupdateError {
            logger.attention("the trial record cannot be used; starting what is installed", metadata: ["error": "\(error.message)"])
            audit.record(event: "trial", decision: "record-unusable", reason: error.message)
            try? folder.removeTrial()
            return .cleared
        }
        guard var trial else { return .none }
        let candidate = try Version(trial.candidate)
        let previous = try Version(trial.previous)
        let tree = folder.updateDirectory + "/" + trial.previousTree
        let installed = folder.readVersionDoc().value
        if installed == previous {
            // The candidate's install never committed, or its rollback did and the end of it did not.
            if trial.rollingBack {
                try? folder.markBad(candidate)
            }
            try? TreeRemoval.remove(path: tree)
            try folder.removeTrial()
            return trial.rollingBack ? .rolledBack(bad: candidate, to: previous) : .cleared
        }
        guard installed == candidate else {
            logger.attention(
                "a trial record names neither the installed version nor the one before; removed",
                metadata: ["update.version.new": "\(candidate)", "update.version": "\(installed.map(\.description) ?? "none")"])
            try? TreeRemoval.remove(path: tree)
            try folder.removeTrial()
            return .cleared
        }
        let kept = PreviousVersion(version: previous, tree: tree)
        if !trial.rollingBack, trial.starts < trial.maxStarts {
            trial.starts += 1
            try folder.writeTrial(trial)
            logger.info(
                "the new version is still on trial",
                metadata: ["update.version.new": "\(candidate)", "trial.start": "\(trial.starts) of \(trial.maxStarts)"])
            return .continuing(candidate: candidate, previous: kept, start: trial.starts, of: trial.maxStarts)
        }
        guard FileManager.default.fileExists(atPath: tree) else {
            logger.attention(
                "the version kept for a rollback is gone; the unconfirmed version stays", metadata: ["update.version.new": "\(candidate)"])
            audit.record(event: "trial", version: trial.candidate, decision: "unresolvable", reason: "the kept version \(previous) is gone")
            try folder.removeTrial()
            return .cleared
        }
        try await rollBack(to: kept, reason: "it was not confirmed healthy in \(trial.starts) start\(trial.starts == 1 ? "" : "s")")
        return .rolledBack(bad: candidate, to: previous)
    }

    /// The name of the folder that keeps `version` during a trial.
    static func keptTreeName(for version: Version) -> String {
        "previous-\(version)"
    }
}
