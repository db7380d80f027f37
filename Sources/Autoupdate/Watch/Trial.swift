#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A new version on trial: installed, not yet confirmed healthy, with the version it replaced
/// kept beside it.
///
/// Written (flushed, renamed into place) **before** the install that starts the trial, so that
/// whatever dies during the trial (the app, the watcher, the machine) the next `watch` or `run`
/// finds it and decides before it starts anything: the candidate gets another start while it has
/// starts left (boot counting), else the kept version is put back and the candidate is marked bad.
/// Every step of that decision can run twice, so a kill during it is finished by the next start.
struct Trial: Codable, Equatable, Sendable {
    /// The version on trial.
    var candidate: String
    /// The version it replaced, kept in ``previousTree``.
    var previous: String
    /// The kept version's folder, a name in the update folder (`previous-…`).
    var previousTree: String
    /// How many times the candidate has been started (or was about to be).
    var starts: Int
    /// How many starts it gets before it must have been confirmed.
    var maxStarts: Int
    /// A rollback has begun: the next start finishes it.
    var rollingBack: Bool = false

    /// The file, in the update folder.
    static let fileName = "trial.json"
}

extension AppFolder {
    var trialPath: String { updateDirectory + "/" + Trial.fileName }

    /// The trial in progress: `nil` when there is none. A record that cannot be read (or names a
    /// folder outside the update folder) is refused with an error naming it.
    func readTrial() throws -> Trial? {
        guard let data = FileManager.default.contents(atPath: trialPath) else {
            return nil
        }
        guard let trial = try? JSONDecoder().decode(Trial.self, from: data), (try? Version(trial.candidate)) != nil,
            (try? Version(trial.previous)) != nil, trial.previousTree.hasPrefix("previous-"), !trial.previousTree.contains("/"),
            trial.previousTree != "previous-..", trial.maxStarts >= 1
        else {
            throw AutoupdateError(
                .install, "the trial record \(quoted(trialPath)) is unreadable; autoupdate did not write it like this")
        }
        return trial
    }

    /// Writes the record durably (the next start relies on it).
    func writeTrial(_ trial: Trial) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try FileManager.default.createDirectory(atPath: updateDirectory, withIntermediateDirectories: true)
        try AtomicFile.write(Array(try encoder.encode(trial)), to: trialPath)
    }

    func removeTrial() throws {
        try removeIfPresent(trialPath)
    }
}

/// What ``Updater/resolveTrialForStart()`` found and did, before the app starts.
public enum TrialResolution: Sendable, Equatable {
    /// No trial was in progress.
    case none
    /// The candidate gets start number `start` of `of`; its trial goes on (a watch confirms it
    /// once it has passed its health window; `run` once it exits cleanly).
    case continuing(candidate: Version, previous: PreviousVersion, start: Int, of: Int)
    /// The candidate's starts were used up unconfirmed: `previous` was put back and `bad` marked
    /// bad (it is not installed again).
    case rolledBack(bad: Version, to: Version)
    /// A record whose install never committed (or was already undone), removed.
    case cleared
}
