#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The named steps of a journaled install and of its rollback, in order.
///
/// A crash may come between any two of them; recovery must then leave the app folder exactly
/// the old version (before ``committed``) or exactly the new one (from it on). The crash test
/// kills the installer at each step in turn: a debug build of autoupdate stops itself with
/// SIGKILL at the step named by `AUTOUPDATE_TEST_KILL_AT_STEP`. Release builds never read it.
enum InstallStep: String, CaseIterable, Sendable {
    // The install
    case journalWritten = "journal-written"
    case foldersWritable = "folders-writable"
    case backupCreated = "backup-created"
    /// The first old file is in the backup; the others are still in place.
    case firstOldEntryMoved = "first-old-entry-moved"
    case oldEntriesMoved = "old-entries-moved"
    case replacedFoldersRemoved = "replaced-folders-removed"
    case createdFoldersMoved = "created-folders-moved"
    /// The first new file is in the app; the others are still staged.
    case firstNewEntryMoved = "first-new-entry-moved"
    case newEntriesMoved = "new-entries-moved"
    case fileListWritten = "file-list-written"
    case synced = "synced"
    /// `version.txt` names the new version: the commit point.
    case committed = "committed"
    case folderModesApplied = "folder-modes-applied"
    case previousKept = "previous-kept"
    case journalRemoved = "journal-removed"
    // A rollback (of a failed install, or by recovery)
    case rollbackNewEntriesRemoved = "rollback-new-entries-removed"
    case rollbackFirstOldEntryRestored = "rollback-first-old-entry-restored"
    case rollbackOldEntriesRestored = "rollback-old-entries-restored"
    case rollbackFileListRestored = "rollback-file-list-restored"

    /// Whether a crash at this step leaves the new version (after recovery).
    var isCommitted: Bool {
        switch self {
        case .committed, .folderModesApplied, .previousKept, .journalRemoved: true
        default: false
        }
    }

    /// Marks the step reached. In a debug build, dies here when the test asked for it.
    func reached() {
        #if DEBUG
        if let wanted = Self.killAt, wanted == self {
            kill(getpid(), SIGKILL)
        }
        #endif
    }

    #if DEBUG
    private static let killAt: InstallStep? = getenv("AUTOUPDATE_TEST_KILL_AT_STEP").flatMap { InstallStep(rawValue: String(cString: $0)) }
    #endif
}
