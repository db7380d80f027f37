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
import Logging
import SystemPackage

/// Swaps a staged tree into an app folder so that, after any crash, the app is entirely the old
/// version or entirely the new one.
///
/// The swap, with a journal written (and flushed) before anything moves:
/// 1. folders the swap writes in are given their owner's write permission if they lack it (a
///    release may hold read-only folders; their modes are in the journal);
/// 2. the entries listed in `filelist.txt` move out to a backup folder; a folder the new tree
///    replaces by a file or symlink, emptied, goes;
/// 3. the staged entries move in (renames on one file system: no copies; a folder the app lacks
///    moves in whole, one rename for everything in it);
/// 4. `filelist.txt` is rewritten to the new tree, everything is flushed (`syncfs`);
/// 5. `version.txt` is written atomically: **the commit point**;
/// 6. folders get their final modes, the journal goes; then, as mere clean-up that can never
///    block a later run, the backup and the staging folder are removed.
///
/// ``recover()`` runs before any other work: a journal without a committed `version.txt` is
/// rolled back (new entries removed, folders it created removed, the backup moved back, folder
/// modes and the old `filelist.txt` restored); a committed one is finished. Every step can run
/// twice, so recovery itself may be interrupted. A journal naming any path outside the app
/// folder is refused, never acted on.
///
/// Never touched: the layout's own files, and files the app created that `filelist.txt` does not
/// list (also inside a listed folder). An update whose tree would replace such a file is refused
/// before anything moves.
///
/// Every call blocks on the file system (renames, `fsync`, `syncfs`): callers on a task run it
/// with ``runOnBackgroundThread(name:_:)``, never on the cooperative pool.
struct Installer: Sendable {
    /// What an interrupted install left, and what recovery did about it.
    enum Recovery: Equatable, Sendable {
        case nothingToDo
        case rolledBack(version: String)
        case rolledForward(version: String)
    }

    struct Journal: Codable, Equatable {
        /// The version being installed; `version.txt` saying it means the install committed.
        var version: String
        /// The staging and backup folders, inside the update folder.
        var staging: String
        var backup: String
        /// Listed entries present before the install (files move to the backup; folders end with `/`).
        var oldEntries: [String]
        /// The new tree's entries (files and symlinks; empty folders end with `/`).
        var newEntries: [String]
        /// Folders the install creates in the app folder, parents first.
        var createdFolders: [String]
        /// `filelist.txt` before the install (`nil`: there was none).
        var previousFileList: [String]?
        /// Every folder of the new tree and its mode, applied once the install has committed.
        /// (Absent in journals of autoupdate 0.1, as are the next two.)
        var newFolderModes: [String: UInt32]?
        /// The modes of the app's folders on the paths the install works on, as they were.
        var oldFolderModes: [String: UInt32]?
        /// App folders that a file or symlink of the new tree replaces (emptied of old entries,
        /// then removed), parents first.
        var replacedFolders: [String]?
        /// Old files that the new tree holds unchanged and that stay where they are (a
        /// differential update): listed in both entry lists, moved by neither the install nor a
        /// rollback. (Absent in journals of full installs and of earlier versions.)
        var keptEntries: [String]?
        /// The folder of the update folder that keeps the replaced version once committed (a
        /// rollback among kept versions; a trial), so that recovery keeps it too.
        var keepBackupAs: String?
        /// The version that the commit makes bad (an explicit rollback replaces it): recorded
        /// with the commit, so a kill right after it cannot lose the mark.
        var markBadOnCommit: String?
    }

    /// What a differential update leaves in place: the staged tree holds only the files that
    /// changed (and the folders they need); the rest of the new tree is already installed.
    struct Overlay: Sendable {
        /// Files of the installed version that the new one holds byte for byte and with the same
        /// mode. Each must be listed in `filelist.txt` and still hold those bytes at install time.
        var kept: [String: InstalledFile]
        /// Every folder of the new tree and its mode (the staged tree lacks those that hold only
        /// kept files).
        var folderModes: [String: UInt32]
    }

    let folder: AppFolder
    let logger: Logger
    /// When set, a committed install keeps the old version at this path (inside the update
    /// folder) instead of removing it: a tree, with its empty folders and folder modes, that
    /// can be installed again to roll back.
    var keepBackupAs: String?
    /// When set, the commit marks this version bad (see ``Journal/markBadOnCommit``).
    var markBadOnCommit: Version?

    private var journalPath: String { folder.updateDirectory + "/journal.json" }

    // MARK: Install

    /// Installs the tree staged in `staging` (a folder inside the update folder) as `version`.
    ///
    /// - Parameter overlay: With a differential update, the installed files the new version
    ///   keeps where they are; a kept file that changed since it was checked refuses the
    ///   install before anything moves.
    /// - Important: The caller holds the update lock and the install lock.
    /// - Throws: ``AutoupdateError`` (`.install`, `.fileSystem`); the app folder is then rolled
    ///   back to exactly what it was.
    func install(staging: String, version: Version, overlay: Overlay? = nil) throws {
        let kept = overlay?.kept ?? [:]
        let previousList = folder.readFileList()
        if case .corrupted(let reason) = previousList {
            logger.attention("corrupted file list; no old file will be removed", metadata: ["file.reason": "\(reason)"])
        }
        let app = try Folder(path: folder.path)
        let stagingFolder = try Folder(path: staging)

        // Staged folders must be writable to us to be moved and emptied, whatever the release
        // says their modes are: those are applied after the commit.
        let staged = try stagingFolder.tree(
            skippingTopLevel: { name in
                guard folder.layout.reservedNames.contains(name) else { return false }
                logger.info("the archive's copy of a layout file is ignored", metadata: ["archive.entry": "\(name)"])
                return true
            }, makingFoldersAccessible: true)
        var snapshot = AppSnapshot(app: app)
        let oldEntries = Self.presentEntries(listed: previousList.value ?? [], in: &snapshot)
        let oldFiles = Set(oldEntries.filter { !$0.hasSuffix("/") })
        try checkKept(kept, in: app, &snapshot, oldFiles: oldFiles)
        let newEntries = Self.merging(kept: kept.keys, into: staged.entries)
        let replacedFolders = try foldersToReplace(app, &snapshot, oldEntries: Set(oldEntries), newEntries: newEntries)
        try checkConflicts(&snapshot, oldFiles: oldFiles, replaced: Set(replacedFolders), newEntries: newEntries)
        let createdFolders = foldersToCreate(&snapshot, oldFiles: oldFiles, newEntries: newEntries)
        let oldFolderModes = folderModes(
            app, &snapshot, on: oldEntries + newEntries + replacedFolders.map { $0 + "/" }, created: Set(createdFolders))
        let backupName = "backup-\(UUID().uuidString)"
        let journal = Journal(
            version: version.description,
            staging: String(staging.dropFirst(folder.updateDirectory.count + 1)),
            backup: backupName,
            oldEntries: oldEntries, newEntries: newEntries, createdFolders: createdFolders,
            previousFileList: previousList.value,
            newFolderModes: staged.folderModes.merging(overlay?.folderModes ?? [:]) { staged, _ in staged }, oldFolderModes: oldFolderModes,
            replacedFolders: replacedFolders, keptEntries: kept.isEmpty ? nil : kept.keys.sorted(),
            keepBackupAs: keepBackupAs.map { String($0.dropFirst(folder.updateDirectory.count + 1)) },
            markBadOnCommit: markBadOnCommit?.description)

        // No flush of the staged data yet: a crash before the commit rolls back, so only the
        // commit needs everything on disk, and the flush just before it covers both.
        try writeJournal(journal)
        InstallStep.journalWritten.reached()
        do {
            // Parents first, so that a folder we may not search does not hide its children.
            for (path, mode) in oldFolderModes.sorted(by: { depth($0.key) < depth($1.key) }) where mode & 0o700 != 0o700 {
                try app.setFolderMode(components(of: path), mode | 0o700)
            }
            InstallStep.foldersWritable.reached()
            let backup = try Folder(path: folder.updateDirectory, creating: backupName)
            InstallStep.backupCreated.reached()
            var movedOld = false
            for entry in oldEntries where !entry.hasSuffix("/") && kept[entry] == nil {
                try move(components(of: entry), from: app, to: backup, creatingParents: true)
                if !movedOld {
                    movedOld = true
                    InstallStep.firstOldEntryMoved.reached()
                }
            }
            InstallStep.oldEntriesMoved.reached()
            for path in replacedFolders.reversed() {
                try app.removeEmptyFolder(components(of: path))
            }
            InstallStep.replacedFoldersRemoved.reached()
            // A folder the app lacks moves in whole, with everything in it: one rename instead
            // of one per file. The journal lists its entries all the same.
            let created = Set(createdFolders)
            for path in createdFolders where !created.contains(parentPath(of: path)) {
                try move(components(of: path), from: stagingFolder, to: app, creatingParents: false)
            }
            InstallStep.createdFoldersMoved.reached()
            var movedNew = false
            for entry in newEntries where !entry.hasSuffix("/") && kept[entry] == nil && !created.contains(parentPath(of: entry)) {
                try move(components(of: entry), from: stagingFolder, to: app, creatingParents: true)
                if !movedNew {
                    movedNew = true
                    InstallStep.firstNewEntryMoved.reached()
                }
            }
            InstallStep.newEntriesMoved.reached()
            try folder.writeFileList(newEntries)
            InstallStep.fileListWritten.reached()
            app.syncFileSystem()
            InstallStep.synced.reached()
            try folder.writeVersionDoc(version)
            InstallStep.committed.reached()
        } catch {
            logger.info("install failed; rolling back", metadata: ["error": "\(error)"])
            do {
                try rollBack(journal)
            } catch let rollbackError {
                throw AutoupdateError(
                    .install,
                    "installing \(version) failed, and so did the rollback (the journal remains for the next recovery): \(rollbackError)",
                    underlying: error)
            }
            throw AutoupdateError(
                .install, "installing \(version) failed; the app folder was restored: \(describe(error))", underlying: error)
        }
        try finish(journal)
    }

    /// Refuses to leave in place a file that is not the old version's, or that no longer holds
    /// the new version's bytes.
    private func checkKept(_ kept: [String: InstalledFile], in app: Folder, _ snapshot: inout AppSnapshot, oldFiles: Set<String>) throws {
        for (path, file) in kept {
            guard isInsideApp(path), oldFiles.contains(path) else {
                throw AutoupdateError(
                    .install,
                    "the update would keep \(quoted(path)) in place, but it is not an installed file listed in \(folder.layout.fileList)")
            }
            let parts = components(of: path)
            guard file.isStill(at: parts, in: app, now: snapshot.identity(of: parts[...])) else {
                throw AutoupdateError(
                    .install,
                    "\(quoted(path)) changed after the update was prepared (the update left it in place as it was then); nothing was installed, and the next update fetches it"
                )
            }
        }
    }

    /// The new tree's entries: the staged ones and the kept files, in the order a listing of the
    /// whole tree has (depth first, names sorted). A staged folder that only looks empty because
    /// its files are kept is not an empty-folder entry.
    private static func merging(kept: some Collection<String>, into staged: [String]) -> [String] {
        guard !kept.isEmpty else { return staged }
        var keptFolders = Set<String>()
        for path in kept {
            for index in path.utf8.indices where path.utf8[index] == UInt8(ascii: "/") {
                keptFolders.insert(String(path[...index]))
            }
        }
        let merged = staged.filter { !($0.hasSuffix("/") && keptFolders.contains($0)) } + kept
        return merged.map { ($0, components(of: $0)) }
            .sorted { $0.1.lexicographicallyPrecedes($1.1) }
            .map(\.0)
    }

    private func describe(_ error: any Error) -> String {
        (error as? AutoupdateError)?.message ?? "\(error)"
    }

    /// The listed entries that are there. A name listed without its trailing `/` that is a
    /// folder here is a folder entry: what is inside it and not listed is the app's, never
    /// moved or deleted with it.
    private static func presentEntries(listed: [String], in snapshot: inout AppSnapshot) -> [String] {
        var seen = Set<String>()
        var present: [String] = []
        for entry in listed {
            let parts = components(of: entry)
            let kind = snapshot.kind(of: parts[...])
            let normalized: String
            switch kind {
            case .missing where entry.hasSuffix("/"): normalized = entry  // an empty folder that went: nothing to move
            case .missing: continue
            case .folder: normalized = parts.joined(separator: "/") + "/"
            case .other: normalized = entry.hasSuffix("/") ? parts.joined(separator: "/") : entry
            }
            if seen.insert(normalized).inserted {
                present.append(normalized)
            }
        }
        return present
    }

    /// The app's folders that the new tree replaces by a file or a symlink (`lib/` becoming
    /// `lib -> lib64`), parents first. Allowed only when everything in such a folder is the old
    /// version's (listed), so that once the old entries have moved out, it is empty.
    private func foldersToReplace(
        _ app: Folder, _ snapshot: inout AppSnapshot, oldEntries: Set<String>, newEntries: [String]
    ) throws -> [String] {
        var replaced: [String] = []
        for entry in newEntries where !entry.hasSuffix("/") {
            let parts = components(of: entry)
            guard snapshot.kind(of: parts[...]) == .folder else { continue }
            let inside = try app.open(parts).tree(skippingTopLevel: { _ in false })
            for item in inside.entries {
                let path = entry + "/" + item
                // Empty folders inside may go: they hold nothing, and a rollback makes them again.
                guard oldEntries.contains(path) || item.hasSuffix("/") else {
                    throw AutoupdateError(
                        .install,
                        "the update replaces the folder \(quoted(entry)) by a file or symlink, but \(quoted(path)) in it is not in \(folder.layout.fileList) (the app or a person made it); move it away or list it to let updates replace it"
                    )
                }
            }
            replaced.append(entry)
            replaced += inside.folderModes.keys.sorted { depth($0) < depth($1) }.map { entry + "/" + $0 }
        }
        return replaced
    }

    /// Refuses an update that would replace something the app made itself.
    private func checkConflicts(_ app: inout AppSnapshot, oldFiles: Set<String>, replaced: Set<String>, newEntries: [String]) throws {
        for entry in newEntries {
            let parts = components(of: entry)
            // Every parent must be a folder (or an old entry that moves away).
            for length in 1..<max(parts.count, 1) where app.kind(of: parts[..<length]) == .other {
                let parent = parts[..<length].joined(separator: "/")
                if !oldFiles.contains(parent) {
                    throw AutoupdateError(
                        .install, "the update needs a folder at \(quoted(parent)), where the app has a file that filelist.txt does not list"
                    )
                }
            }
            if entry.hasSuffix("/") {
                if app.kind(of: parts[...]) == .other, !oldFiles.contains(parts.joined(separator: "/")) {
                    throw AutoupdateError(.install, "the update needs a folder at \(quoted(entry)), where the app has a file")
                }
                continue
            }
            if app.kind(of: parts[...]) != .missing, !oldFiles.contains(entry), !replaced.contains(entry) {
                throw AutoupdateError(
                    .install,
                    "the update would replace \(quoted(entry)), which is not in \(folder.layout.fileList) (the app or a person made it); move it away or list it to let updates replace it"
                )
            }
        }
    }

    /// The folders missing in the app for the new entries (an old file that moves away to make
    /// room for a folder counts as missing), parents first.
    private func foldersToCreate(_ app: inout AppSnapshot, oldFiles: Set<String>, newEntries: [String]) -> [String] {
        folders(on: newEntries).filter { path, parts in
            switch app.kind(of: parts[...]) {
            case .missing: true
            case .other: oldFiles.contains(path)
            case .folder: false
            }
        }.map(\.path)
    }

    /// The modes of the app's folders on the way to `entries`, except those the install creates.
    private func folderModes(_ app: Folder, _ snapshot: inout AppSnapshot, on entries: [String], created: Set<String>) -> [String: UInt32] {
        var modes: [String: UInt32] = [:]
        for (path, parts) in folders(on: entries) where !created.contains(path) {
            if let found = snapshot.identity(of: parts[...]), found.type == UInt32(S_IFDIR) {
                modes[path] = found.mode
            }
        }
        return modes
    }

    /// The folders on the way to `entries` (their parents, and the folders that entries ending
    /// in `/` name), each once, parents first.
    private func folders(on entries: [String]) -> [(path: String, parts: [String])] {
        var folders: [(path: String, parts: [String])] = []
        var seen = Set<String>()
        for entry in entries {
            let parts = components(of: entry)
            let depth = entry.hasSuffix("/") ? parts.count : parts.count - 1
            guard depth > 0 else { continue }
            for length in 1...depth {
                let path = parts[..<length].joined(separator: "/")
                if seen.insert(path).inserted {
                    folders.append((path, Array(parts[..<length])))
                }
            }
        }
        return folders
    }

    // MARK: Finish and recover

    /// Completes a committed install. Only removing the journal (or the emptied kept version it
    /// put back) can fail it: everything else is either done or merely logged, so nothing after
    /// the commit blocks the next run.
    private func finish(_ journal: Journal) throws {
        let app = try Folder(path: folder.path)
        let newFolderModes = journal.newFolderModes ?? [:]
        let newSet = Set(journal.newEntries)
        // Folders the old version used that are now empty go; the new tree's stay.
        for (path, parts) in folders(on: journal.oldEntries).reversed() where !newSet.contains(path + "/") && newFolderModes[path] == nil {
            app.removeFolderIfEmpty(parts)
        }
        // Final modes, deepest first: the new tree's for its folders, the old ones back for the rest.
        var finalModes = journal.oldFolderModes ?? [:]
        finalModes.merge(newFolderModes) { _, new in new }
        let oldModes = journal.oldFolderModes ?? [:]
        for (path, mode) in finalModes.sorted(by: { depth($0.key) > depth($1.key) }) {
            // A folder whose mode the release keeps was never touched (the install relaxes only
            // folders that lack u+rwx).
            if oldModes[path] == mode, mode & 0o700 == 0o700 { continue }
            let parts = components(of: path)
            guard let current = app.folderMode(parts), current != mode else { continue }
            do {
                try app.setFolderMode(parts, mode)
            } catch {
                logger.attention("cannot give a folder its mode", metadata: ["file.path": "\(path)", "error": "\(error)"])
            }
        }
        InstallStep.folderModesApplied.reached()
        if let bad = journal.markBadOnCommit.flatMap({ try? Version($0) }) {
            do {
                try folder.markBad(bad)
            } catch {
                logger.attention("cannot mark the replaced version bad", metadata: ["error": "\(error)"])
            }
        }
        let backup = folder.updateDirectory + "/" + journal.backup
        var kept = false
        // The journal's word first: recovery runs without the installer that wrote it.
        let keepBackupAs = journal.keepBackupAs.map { folder.updateDirectory + "/" + $0 } ?? keepBackupAs
        if let keepBackupAs, FileManager.default.fileExists(atPath: backup) {
            do {
                try keepPrevious(backup: backup, journal: journal, at: keepBackupAs)
                kept = true
            } catch {
                logger.attention("cannot keep the previous version for a rollback", metadata: ["error": "\(error)"])
            }
        }
        InstallStep.previousKept.reached()
        if let version = try? Version(journal.version) {
            do {
                try folder.raiseHighestVersion(to: version)
            } catch {
                logger.attention("cannot record the highest version installed", metadata: ["error": "\(error)"])
            }
        }
        do {
            try folder.removeQueue()
        } catch {
            logger.attention("cannot remove the queue file", metadata: ["error": "\(error)"])
        }
        let staging = folder.updateDirectory + "/" + journal.staging
        if journal.staging.hasPrefix("previous-") {
            // A kept version put back: what is left of it (its folders) goes while the journal
            // still says so; left behind, it would look like a kept version with no files.
            do {
                try TreeRemoval.remove(path: staging)
            } catch {
                // Renamed out of the kept versions' names, it is a leftover the next update removes.
                guard rename(staging, folder.updateDirectory + "/staging-\(UUID().uuidString)") == 0 else { throw error }
            }
        }
        try folder.removeIfPresent(journalPath)
        InstallStep.journalRemoved.reached()
        logger.info("installed", metadata: ["update.version.new": "\(journal.version)"])
        if !kept {
            removeLeftover(backup)
        }
        removeLeftover(staging)
    }

    /// Turns the backup into a tree that installs the old version again: its empty folders are
    /// made and every folder gets the mode it had in the app.
    private func keepPrevious(backup path: String, journal: Journal, at destination: String) throws {
        let backup = try Folder(path: path)
        for entry in journal.oldEntries where entry.hasSuffix("/") {
            var parts: [String] = []
            for part in components(of: entry) {
                parts.append(part)
                try backup.createFolder(parts, mode: 0o700)
            }
        }
        // Files the install left in place are the old version's too: the kept tree gets copies.
        let app = try Folder(path: folder.path)
        for entry in journal.keptEntries ?? [] {
            try app.copyFile(components(of: entry), to: backup)
        }
        let modes = journal.oldFolderModes ?? [:]
        let folders = try backup.tree(skippingTopLevel: { _ in false }).folderModes.keys
        for path in folders.sorted(by: { depth($0) > depth($1) }) {
            try backup.setFolderMode(components(of: path), modes[path] ?? 0o755)
        }
        try TreeRemoval.remove(path: destination)
        guard rename(path, destination) == 0 else {
            let error = Errno.current
            throw AutoupdateError(.fileSystem, "cannot keep the previous version at \(quoted(destination)) (\(error))", underlying: error)
        }
    }

    /// Removes a backup or staging tree that is no longer needed; a failure is logged only (the
    /// next update removes leftovers again).
    private func removeLeftover(_ path: String) {
        do {
            try TreeRemoval.remove(path: path)
        } catch {
            logger.attention("cannot remove a leftover of the install; the next update tries again", metadata: ["error": "\(error)"])
        }
    }

    /// Finishes or undoes an interrupted install.
    ///
    /// - Important: The caller holds the update lock and the install lock.
    /// - Throws: ``AutoupdateError`` `.install` when the journal is unreadable or names a path
    ///   outside the app folder (then nothing is done), or when the rollback failed.
    func recover() throws -> Recovery {
        guard let journal = try readJournal() else {
            return .nothingToDo
        }
        if isCommitted(journal) {
            logger.attention(
                "finishing an install that was interrupted after its commit", metadata: ["update.version.new": "\(journal.version)"])
            try finish(journal)
            return .rolledForward(version: journal.version)
        }
        logger.attention("rolling back an install that was interrupted", metadata: ["update.version.new": "\(journal.version)"])
        try rollBack(journal)
        return .rolledBack(version: journal.version)
    }

    /// The journal of an interrupted install, checked; `nil` when there is none.
    func readJournal() throws -> Journal? {
        guard FileManager.default.fileExists(atPath: journalPath) else {
            return nil
        }
        guard let data = FileManager.default.contents(atPath: journalPath),
            let journal = try? JSONDecoder().decode(Journal.self, from: data)
        else {
            throw AutoupdateError(
                .install, "the install journal \(quoted(journalPath)) is unreadable; the app folder may hold a half-finished update")
        }
        try validate(journal)
        return journal
    }

    /// Whether the journal's install reached its commit point.
    func isCommitted(_ journal: Journal) -> Bool {
        folder.readVersionDoc().value?.description == journal.version
    }

    /// Every path a journal names must lie inside the app folder (or be a folder of the update
    /// folder that an install makes): recovery deletes and moves what the journal says.
    private func validate(_ journal: Journal) throws {
        func refuse(_ path: String) -> AutoupdateError {
            AutoupdateError(
                .install,
                "the install journal \(quoted(journalPath)) names \(quoted(path)), which is not a path inside the app folder that an install uses; autoupdate did not write it, so nothing was done (inspect the app folder, then delete the journal)"
            )
        }
        func isUpdateFolderName(_ name: String, _ prefixes: [String]) -> Bool {
            !name.contains("/") && !name.contains("\0") && name != "." && name != ".." && prefixes.contains { name.hasPrefix($0) }
        }
        guard isUpdateFolderName(journal.staging, ["staging-", "previous-"]) else { throw refuse(journal.staging) }
        guard isUpdateFolderName(journal.backup, ["backup-"]) else { throw refuse(journal.backup) }
        if let kept = journal.keepBackupAs, !isUpdateFolderName(kept, ["previous-"]) { throw refuse(kept) }
        if let bad = journal.markBadOnCommit, (try? Version(bad)) == nil { throw refuse(bad) }
        guard (try? Version(journal.version)) != nil else { throw refuse(journal.version) }
        let paths =
            journal.oldEntries + journal.newEntries + journal.createdFolders + (journal.previousFileList ?? [])
            + (journal.replacedFolders ?? []) + (journal.keptEntries ?? []) + Array((journal.newFolderModes ?? [:]).keys)
            + Array((journal.oldFolderModes ?? [:]).keys)
        for path in paths where !isInsideApp(path) {
            throw refuse(path)
        }
        for mode in Array((journal.newFolderModes ?? [:]).values) + Array((journal.oldFolderModes ?? [:]).values) where mode > 0o7777 {
            throw refuse(String(mode, radix: 8))
        }
    }

    /// A relative path of clean components (a folder may end with one `/`), not a layout file.
    private func isInsideApp(_ path: String) -> Bool {
        let body = path.hasSuffix("/") ? String(path.dropLast()) : path
        let parts = body.split(separator: "/", omittingEmptySubsequences: false)
        return !body.isEmpty && !body.contains("\0")
            && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
            && !folder.layout.reservedNames.contains(String(parts[0]))
    }

    /// Puts the app folder back as the journal says it was.
    private func rollBack(_ journal: Journal) throws {
        let app = try Folder(path: folder.path)
        let old = Set(journal.oldEntries)
        let stagingPath = folder.updateDirectory + "/" + journal.staging
        // A kept version being put back (`previous-…`) must stay whole for the next try: its files
        // go back to it. An entry the staging lacks has moved in (all old files moved out before
        // the first new one moved in); files a differential update kept in place never moved.
        let keptTree = journal.staging.hasPrefix("previous-") ? try? Folder(path: stagingPath) : nil
        let keptInPlace = Set(journal.keptEntries ?? [])
        if let keptTree {
            for entry in journal.newEntries.reversed() where !entry.hasSuffix("/") && !keptInPlace.contains(entry) {
                let parts = components(of: entry)
                if !keptTree.exists(parts), app.kind(of: parts) == .other {
                    try move(parts, from: app, to: keptTree, creatingParents: true)
                }
            }
            // Its folders as they were kept (the install made them writable to move files out).
            for (path, mode) in (journal.newFolderModes ?? [:]).sorted(by: { depth($0.key) > depth($1.key) }) {
                let parts = components(of: path)
                if let current = keptTree.folderMode(parts), current != mode {
                    try? keptTree.setFolderMode(parts, mode)
                }
            }
        }
        // 1. New files and symlinks that did not replace an old one go.
        for entry in journal.newEntries.reversed() where !old.contains(entry) && !entry.hasSuffix("/") {
            let parts = components(of: entry)
            if app.kind(of: parts) == .other {
                try app.remove(parts)
            }
        }
        InstallStep.rollbackNewEntriesRemoved.reached()
        // 2. Folders the install created go (they hold nothing of the old version).
        for path in journal.createdFolders.reversed() {
            app.removeFolderIfEmpty(components(of: path))
        }
        // 3. Folders a new file had replaced come back (their modes follow in step 5).
        for path in journal.replacedFolders ?? [] {
            try app.createFolder(components(of: path), mode: 0o700)
        }
        // 4. The old entries come back from the backup, over any new file of the same name.
        let backupPath = folder.updateDirectory + "/" + journal.backup
        if FileManager.default.fileExists(atPath: backupPath) {
            let backup = try Folder(path: backupPath)
            var restored = false
            for entry in journal.oldEntries where !entry.hasSuffix("/") {
                let parts = components(of: entry)
                if backup.exists(parts) {
                    try move(parts, from: backup, to: app, creatingParents: true)
                    if !restored {
                        restored = true
                        InstallStep.rollbackFirstOldEntryRestored.reached()
                    }
                }
            }
        }
        InstallStep.rollbackOldEntriesRestored.reached()
        // 5. Folder modes as they were, deepest first.
        for (path, mode) in (journal.oldFolderModes ?? [:]).sorted(by: { depth($0.key) > depth($1.key) }) {
            let parts = components(of: path)
            if let current = app.folderMode(parts), current != mode {
                try app.setFolderMode(parts, mode)
            }
        }
        // 6. The old file list, exactly.
        if let previous = journal.previousFileList {
            try folder.writeFileList(previous)
        } else {
            try folder.removeIfPresent(folder.path(of: folder.layout.fileList))
        }
        InstallStep.rollbackFileListRestored.reached()
        app.syncFileSystem()
        try folder.removeIfPresent(journalPath)
        // The app folder is whole again: what follows is clean-up that may fail without harm.
        removeLeftover(backupPath)
        if keptTree == nil {
            removeLeftover(stagingPath)
        }
    }

    // MARK: Helpers

    private func writeJournal(_ journal: Journal) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(journal)), to: journalPath)
    }

    private func move(_ parts: [String], from source: Folder, to destination: Folder, creatingParents: Bool) throws {
        try source.move(parts, to: destination, creatingParents: creatingParents)
    }

    // Paths are split on their UTF-8 bytes: `String.split` walks grapheme clusters, which cost
    // most of an install's bookkeeping over thousands of entries (perf).
    private func components(of entry: String) -> [String] {
        Self.components(of: entry)
    }

    fileprivate static func components(of entry: String) -> [String] {
        entry.utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
    }

    private func depth(_ path: String) -> Int {
        Self.depth(path)
    }

    /// The number of components of a path.
    private static func depth(_ path: String) -> Int {
        var count = 0
        var inComponent = false
        for byte in path.utf8 {
            if byte == UInt8(ascii: "/") {
                inComponent = false
            } else if !inComponent {
                inComponent = true
                count += 1
            }
        }
        return count
    }

    /// The folder holding an entry ("" at the top).
    private func parentPath(of entry: String) -> String {
        var parts = components(of: entry)
        parts.removeLast()
        return parts.joined(separator: "/")
    }
}

/// What the app folder holds at the paths an install plans around, each looked up once (and
/// nothing below a path that is not a folder).
private struct AppSnapshot {
    let app: Folder
    /// What each path looked up is (`nil`: missing, or below something that is not a folder).
    private var found: [String: FileIdentity?] = [:]

    init(app: Folder) {
        self.app = app
    }

    mutating func kind(of parts: ArraySlice<String>) -> Folder.EntryKind {
        guard !parts.isEmpty else { return .folder }
        guard let identity = identity(of: parts) else { return .missing }
        return identity.type == UInt32(S_IFDIR) ? .folder : .other
    }

    /// The entry's `lstat`, each path looked up once, parents first.
    mutating func identity(of parts: ArraySlice<String>) -> FileIdentity? {
        var current: FileIdentity?
        var parentIsFolder = true
        var key = ""
        for (index, part) in parts.enumerated() {
            key += index == 0 ? part : "/" + part
            if let known = found[key] {
                current = known
            } else {
                current = parentIsFolder ? app.identity(of: Array(parts.prefix(index + 1))) : nil
                found[key] = current
            }
            parentIsFolder = current?.type == UInt32(S_IFDIR)
        }
        return current
    }
}
