/// The names of the files an app folder holds besides the app: pyautoupdate 1.x's layout, with
/// its defaults.
///
/// ```
/// myapp/
///   version.txt          the installed version (PEP 440)
///   filelist.txt         the files the last update installed, one path per line
///   version_check.log    one line per check: Old X|New Y|Time T
///   .queue               a version found by a check, not installed yet
///   .pyautodownloads/    the update folder: downloads, staging, journal, backups
///   …the app's files…
/// ```
public struct AppLayout: Sendable, Hashable {
    /// The installed version. Default `version.txt`.
    public var versionDoc: String
    /// The files the last update installed. Default `filelist.txt`.
    public var fileList: String
    /// The log of every check. Default `version_check.log`.
    public var versionCheckLog: String
    /// A newer version found by a check and not installed yet. Default `.queue`.
    public var queueUpdate: String
    /// The update folder. Default `.pyautodownloads`.
    public var updateDir: String

    /// The seed's names.
    public init(
        versionDoc: String = "version.txt", fileList: String = "filelist.txt",
        versionCheckLog: String = "version_check.log", queueUpdate: String = ".queue",
        updateDir: String = ".pyautodownloads"
    ) {
        self.versionDoc = versionDoc
        self.fileList = fileList
        self.versionCheckLog = versionCheckLog
        self.queueUpdate = queueUpdate
        self.updateDir = updateDir
    }

    /// The name under which an invalid `version.txt` from the server is kept for inspection, in
    /// the update folder (``AppFolder/serverInvalidDumpPath``); autoupdate 0.1 kept it beside the log.
    public var serverInvalidDump: String { versionCheckLog + ".server-invalid" }

    /// Names at the top of the app folder that belong to the layout: an update never moves,
    /// replaces or deletes them, and an archive cannot install over them (the names of the files
    /// autoupdate 0.1 kept there too).
    public var reservedNames: Set<String> {
        [versionDoc, fileList, versionCheckLog, queueUpdate, updateDir, serverInvalidDump, auditLog]
    }

    /// The name of the JSON-lines audit trail of checks and updates, in the update folder
    /// (``AppFolder/auditLogPath``); autoupdate 0.1 kept it beside the check log.
    public var auditLog: String { "autoupdate-audit.jsonl" }

    /// Checks that every name is a single, distinct file name.
    func validate() throws {
        let names = [versionDoc, fileList, versionCheckLog, queueUpdate, updateDir]
        for name in names where name.isEmpty || name.contains("/") || name == "." || name == ".." || name.contains("\0") {
            throw AutoupdateError(.invalidArgument, "the layout name \(quoted(name)) must be a single file name")
        }
        guard Set(names).count == names.count else {
            throw AutoupdateError(.invalidArgument, "the layout names must all differ: \(names.joined(separator: ", "))")
        }
    }
}
