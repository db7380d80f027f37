import Foundation
import Glibc
import Logging
import SystemPackage

/// Swaps a staged tree into an app folder so that, after any crash, the app is entirely the old
/// version or entirely the new one.
///
/// The swap, with a journal written (and flushed) before anything moves:
/// 1. the entries listed in `filelist.txt` move out to a backup folder;
/// 2. the staged entries move in (renames on one file system: no copies; a folder the app lacks
///    moves in whole, one rename for everything in it);
/// 3. `filelist.txt` is rewritten to the new tree, everything is flushed (`syncfs`);
/// 4. `version.txt` is written atomically: **the commit point**;
/// 5. the backup, the staging folder, `.queue` and the journal are removed.
///
/// ``recover()`` runs before any other work: a journal without a committed `version.txt` is
/// rolled back (new entries removed, folders it created removed, the backup moved back, the old
/// `filelist.txt` restored); a committed one is finished. Every step can run twice, so recovery
/// itself may be interrupted.
///
/// Never touched: the layout's own files, and files the app created that `filelist.txt` does not
/// list. An update whose tree would replace such a file is refused before anything moves.
struct Installer {
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
        /// Listed entries present before the install (they move to the backup).
        var oldEntries: [String]
        /// The new tree's entries (files and symlinks; empty folders end with `/`).
        var newEntries: [String]
        /// Folders the install creates in the app folder, parents first.
        var createdFolders: [String]
        /// `filelist.txt` before the install (`nil`: there was none).
        var previousFileList: [String]?
    }

    let folder: AppFolder
    let logger: Logger
    /// When set, a committed install keeps the old version's files at this path (inside the
    /// update folder) instead of removing them: a tree that can be installed again to roll back.
    var keepBackupAs: String?

    private var journalPath: String { folder.updateDirectory + "/journal.json" }

    // MARK: Install

    /// Installs the tree staged in `staging` (a folder inside the update folder) as `version`.
    ///
    /// - Important: The caller holds the update lock and the install lock.
    /// - Throws: ``AutoupdateError`` (`.install`, `.fileSystem`); the app folder is then rolled
    ///   back to exactly what it was.
    func install(staging: String, version: Version) throws {
        let previousList = folder.readFileList()
        if case .corrupted(let reason) = previousList {
            logger.warning("corrupted file list; no old file will be removed", metadata: ["file.reason": "\(reason)"])
        }
        let listed = previousList.value ?? []
        let app = try Folder(path: folder.path)
        let stagingFolder = try Folder(path: staging)

        let newEntries = try stagingFolder.tree { name in
            guard folder.layout.reservedNames.contains(name) else { return false }
            logger.info("the archive's copy of a layout file is ignored", metadata: ["archive.entry": "\(name)"])
            return true
        }
        var snapshot = AppSnapshot(app: app)
        let oldEntries = listed.filter { entry in
            entry.hasSuffix("/") || snapshot.kind(of: components(of: entry)[...]) != .missing
        }
        let oldFiles = Set(oldEntries.filter { !$0.hasSuffix("/") })
        try checkConflicts(&snapshot, oldFiles: oldFiles, newEntries: newEntries)
        let createdFolders = foldersToCreate(&snapshot, oldFiles: oldFiles, newEntries: newEntries)
        let backupName = "backup-\(UUID().uuidString)"
        let journal = Journal(
            version: version.description,
            staging: String(staging.dropFirst(folder.updateDirectory.count + 1)),
            backup: backupName,
            oldEntries: oldEntries, newEntries: newEntries, createdFolders: createdFolders,
            previousFileList: previousList.value)

        // No flush of the staged data yet: a crash before the commit rolls back, so only the
        // commit needs everything on disk, and the flush just before it covers both.
        try writeJournal(journal)
        do {
            let backup = try Folder(path: folder.updateDirectory, creating: backupName)
            for entry in oldEntries where !entry.hasSuffix("/") {
                try move(components(of: entry), from: app, to: backup, creatingParents: true)
            }
            // A folder the app lacks moves in whole, with everything in it and its mode: one
            // rename instead of one per file. The journal lists its entries all the same.
            let created = Set(createdFolders)
            for path in createdFolders where !created.contains(parentPath(of: path)) {
                try move(components(of: path), from: stagingFolder, to: app, creatingParents: false)
            }
            for entry in newEntries where !entry.hasSuffix("/") && !created.contains(parentPath(of: entry)) {
                try move(components(of: entry), from: stagingFolder, to: app, creatingParents: true)
            }
            try folder.writeFileList(newEntries)
            app.syncFileSystem()
            try folder.writeVersionDoc(version)
        } catch {
            logger.error("install failed; rolling back", metadata: ["error": "\(error)"])
            do {
                try rollBack(journal)
            } catch let rollbackError {
                throw AutoupdateError(
                    .install, "installing \(version) failed, and so did the rollback (the journal remains for the next recovery): \(rollbackError)",
                    underlying: error)
            }
            throw AutoupdateError(.install, "installing \(version) failed; the app folder was restored: \(describe(error))", underlying: error)
        }
        try finish(journal)
    }

    private func describe(_ error: any Error) -> String {
        (error as? AutoupdateError)?.message ?? "\(error)"
    }

    /// Refuses an update that would replace something the app made itself.
    private func checkConflicts(_ app: inout AppSnapshot, oldFiles: Set<String>, newEntries: [String]) throws {
        for entry in newEntries {
            let parts = components(of: entry)
            // Every parent must be a folder (or an old entry that moves away).
            for length in 1..<max(parts.count, 1) where app.kind(of: parts[..<length]) == .other {
                let parent = parts[..<length].joined(separator: "/")
                if !oldFiles.contains(parent) {
                    throw AutoupdateError(
                        .install, "the update needs a folder at \(quoted(parent)), where the app has a file that filelist.txt does not list")
                }
            }
            if entry.hasSuffix("/") {
                if app.kind(of: parts[...]) == .other, !oldFiles.contains(parts.joined(separator: "/")) {
                    throw AutoupdateError(.install, "the update needs a folder at \(quoted(entry)), where the app has a file")
                }
                continue
            }
            if app.kind(of: parts[...]) != .missing, !oldFiles.contains(entry) {
                throw AutoupdateError(
                    .install,
                    "the update would replace \(quoted(entry)), which is not in \(folder.layout.fileList) (the app or a person made it); move it away or list it to let updates replace it")
            }
        }
    }

    /// The folders missing in the app for the new entries (an old file that moves away to make
    /// room for a folder counts as missing), parents first.
    private func foldersToCreate(_ app: inout AppSnapshot, oldFiles: Set<String>, newEntries: [String]) -> [String] {
        var created: [String] = []
        var seen = Set<String>()
        for entry in newEntries {
            let parts = components(of: entry)
            let depth = entry.hasSuffix("/") ? parts.count : parts.count - 1
            guard depth > 0 else { continue }
            for length in 1...depth {
                let path = parts[..<length].joined(separator: "/")
                guard seen.insert(path).inserted else { continue }
                switch app.kind(of: parts[..<length]) {
                case .missing: created.append(path)
                case .other where oldFiles.contains(path): created.append(path)
                case .other, .folder: break
                }
            }
        }
        return created
    }

    // MARK: Finish and recover

    /// Removes what a committed install no longer needs.
    private func finish(_ journal: Journal) throws {
        let app = try Folder(path: folder.path)
        let newSet = Set(journal.newEntries)
        // Folders the old version used that are now empty go; the new tree's stay.
        let oldFolders = journal.oldEntries.flatMap { entry -> [String] in
            let parts = components(of: entry)
            let depth = entry.hasSuffix("/") ? parts.count : parts.count - 1
            return depth > 0 ? (1...depth).map { parts[..<$0].joined(separator: "/") } : []
        }
        for path in Set(oldFolders).sorted(by: { $0.split(separator: "/").count > $1.split(separator: "/").count })
        where !newSet.contains(path + "/") {
            app.removeFolderIfEmpty(components(of: path))
        }
        let backup = folder.updateDirectory + "/" + journal.backup
        if let keepBackupAs, FileManager.default.fileExists(atPath: backup) {
            try removeTree(keepBackupAs)
            do {
                try FileManager.default.moveItem(atPath: backup, toPath: keepBackupAs)
            } catch {
                throw AutoupdateError(.fileSystem, "cannot keep the previous version at \(quoted(keepBackupAs)): \(error.localizedDescription)", underlying: error)
            }
        } else {
            try removeTree(backup)
        }
        try removeTree(folder.updateDirectory + "/" + journal.staging)
        try folder.removeQueue()
        if let version = try? Version(journal.version) {
            try folder.raiseHighestVersion(to: version)
        }
        try folder.removeIfPresent(journalPath)
        logger.info("installed", metadata: ["update.version.new": "\(journal.version)"])
    }

    /// Finishes or undoes an interrupted install.
    ///
    /// - Important: The caller holds the update lock and the install lock.
    func recover() throws -> Recovery {
        guard FileManager.default.fileExists(atPath: journalPath) else {
            return .nothingToDo
        }
        guard let data = FileManager.default.contents(atPath: journalPath),
              let journal = try? JSONDecoder().decode(Journal.self, from: data)
        else {
            throw AutoupdateError(
                .install, "the install journal \(quoted(journalPath)) is unreadable; the app folder may hold a half-finished update")
        }
        if folder.readVersionDoc().value?.description == journal.version {
            logger.notice("finishing an install that was interrupted after its commit", metadata: ["update.version.new": "\(journal.version)"])
            try finish(journal)
            return .rolledForward(version: journal.version)
        }
        logger.notice("rolling back an install that was interrupted", metadata: ["update.version.new": "\(journal.version)"])
        try rollBack(journal)
        return .rolledBack(version: journal.version)
    }

    /// Puts the app folder back as the journal says it was.
    private func rollBack(_ journal: Journal) throws {
        let app = try Folder(path: folder.path)
        let old = Set(journal.oldEntries)
        // 1. New entries that did not replace an old one go.
        for entry in journal.newEntries.reversed() where !old.contains(entry) && !entry.hasSuffix("/") {
            let parts = components(of: entry)
            if app.exists(parts) {
                try app.remove(parts)
            }
        }
        // 2. Folders the install created go (they hold nothing of the old version).
        for path in journal.createdFolders.reversed() {
            app.removeFolderIfEmpty(components(of: path))
        }
        // 3. The old entries come back from the backup, over any new file of the same name.
        let backupPath = folder.updateDirectory + "/" + journal.backup
        if FileManager.default.fileExists(atPath: backupPath) {
            let backup = try Folder(path: backupPath)
            for entry in journal.oldEntries where !entry.hasSuffix("/") {
                let parts = components(of: entry)
                if backup.exists(parts) {
                    try move(parts, from: backup, to: app, creatingParents: true)
                }
            }
        }
        // 4. The old file list, exactly.
        if let previous = journal.previousFileList {
            try folder.writeFileList(previous)
        } else {
            try folder.removeIfPresent(folder.path(of: folder.layout.fileList))
        }
        app.syncFileSystem()
        try removeTree(backupPath)
        try removeTree(folder.updateDirectory + "/" + journal.staging)
        try folder.removeIfPresent(journalPath)
    }

    // MARK: Helpers

    private func writeJournal(_ journal: Journal) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(journal)), to: journalPath)
    }

    private func move(_ parts: [String], from source: Folder, to destination: Folder, creatingParents: Bool) throws {
        try source.move(parts, to: destination, creatingParents: creatingParents)
    }

    private func removeTree(_ path: String) throws {
        try folder.removeIfPresent(path)
    }

    private func components(of entry: String) -> [String] {
        entry.split(separator: "/").map(String.init)
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
    private var kinds: [String: Folder.EntryKind] = [:]

    init(app: Folder) {
        self.app = app
    }

    mutating func kind(of parts: ArraySlice<String>) -> Folder.EntryKind {
        guard !parts.isEmpty else { return .folder }
        let key = parts.joined(separator: "/")
        if let known = kinds[key] {
            return known
        }
        let kind = kind(of: parts.dropLast()) == .folder ? app.kind(of: Array(parts)) : .missing
        kinds[key] = kind
        return kind
    }
}
