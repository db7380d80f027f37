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
import SystemPackage

extension AppFolder {
    /// The state of one file of the layout: valid, missing, or corrupted (with what is wrong).
    ///
    /// A corrupted file is a condition to report (the seed's `CorruptedFileWarning`), not an error.
    public enum FileCondition<Value: Sendable>: Sendable {
        case valid(Value)
        case missing
        case corrupted(reason: String)

        /// The value when valid.
        public var value: Value? {
            if case .valid(let value) = self { value } else { nil }
        }
    }

    /// The absolute path of a file of the layout (or any name) in this folder.
    public func path(of name: String) -> String {
        path == "/" ? "/" + name : path + "/" + name
    }

    /// The update folder's absolute path.
    public var updateDirectory: String { path(of: layout.updateDir) }

    // MARK: version.txt

    /// The installed version, from `version.txt`.
    public func readVersionDoc() -> FileCondition<Version> {
        readVersion(layout.versionDoc)
    }

    /// Writes `version.txt` atomically: the commit point of an install.
    func writeVersionDoc(_ version: Version) throws {
        try AtomicFile.write(Array((version.description + "\n").utf8), to: path(of: layout.versionDoc))
    }

    // MARK: Rollback protection

    /// The highest version ever installed in this folder: nothing older is installed again (a
    /// replayed old release, even validly signed, is refused). Kept in the update folder.
    public func readHighestVersion() -> Version? {
        let recorded = readVersion(layout.updateDir + "/highest-version.txt").value
        let installed = readVersionDoc().value
        return [recorded, installed].compactMap { $0 }.max()
    }

    /// Raises the recorded highest version to `version` (never lowers it).
    func raiseHighestVersion(to version: Version) throws {
        if let recorded = readVersion(layout.updateDir + "/highest-version.txt").value, recorded >= version {
            return
        }
        try AtomicFile.write(Array((version.description + "\n").utf8), to: updateDirectory + "/highest-version.txt")
    }

    /// Sets the recorded highest version to `version`, lower or not: only after a move off a
    /// yanked version that a trusted release index asked for.
    func resetHighestVersion(to version: Version) throws {
        try AtomicFile.write(Array((version.description + "\n").utf8), to: updateDirectory + "/highest-version.txt")
    }

    /// Versions that failed their health check after an install (`autoupdate watch`): not
    /// installed again.
    public func readBadVersions() -> Set<Version> {
        guard let data = FileManager.default.contents(atPath: updateDirectory + "/bad-versions.txt") else { return [] }
        return Set(String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).compactMap { try? Version(String($0)) })
    }

    func markBad(_ version: Version) throws {
        var bad = readBadVersions()
        bad.insert(version)
        let text = bad.sorted().map(\.description).joined(separator: "\n") + "\n"
        try AtomicFile.write(Array(text.utf8), to: updateDirectory + "/bad-versions.txt")
    }

    // MARK: .queue

    /// The version a check found and that is not installed yet.
    public func readQueue() -> FileCondition<Version> {
        readVersion(layout.queueUpdate)
    }

    func writeQueue(_ version: Version) throws {
        try AtomicFile.write(Array((version.description + "\n").utf8), to: path(of: layout.queueUpdate))
    }

    func removeQueue() throws {
        try removeIfPresent(path(of: layout.queueUpdate))
    }

    private func readVersion(_ name: String) -> FileCondition<Version> {
        let file = path(of: name)
        guard let data = FileManager.default.contents(atPath: file) else {
            return FileManager.default.fileExists(atPath: file) ? .corrupted(reason: "\(name) cannot be read") : .missing
        }
        guard data.count <= Version.maximumTextLength, let text = String(data: data, encoding: .utf8) else {
            return .corrupted(reason: "\(name) is not a UTF-8 text file of at most \(Version.maximumTextLength) bytes")
        }
        do {
            return .valid(try Version(text))
        } catch let error as AutoupdateError {
            return .corrupted(reason: "\(name): \(error.message)")
        } catch {
            return .corrupted(reason: "\(name): \(error)")
        }
    }

    // MARK: version_check.log

    /// What a check found, as the check log records it.
    public enum CheckOutcome: Sendable, Equatable {
        /// A newer version (`Old X|New Y|Time T`).
        case newVersion(Version)
        /// The same or an older version (`Old X|Up to date|Time T`).
        case upToDate
        /// The server's version.txt was not a version (`Old X|Server invalid|Time T`).
        case serverInvalid
    }

    /// One line of the check log.
    public struct CheckLogLine: Sendable, Equatable {
        public let old: Version
        public let outcome: CheckOutcome
        /// As written: UTC, `2026-11-24 21:30:05.123456` (Python's `str(datetime.utcnow())`).
        public let time: String
    }

    /// Appends `Old X|New Y|Time T` (or `Up to date`, `Server invalid`) to the check log.
    func appendCheckLog(old: Version, outcome: CheckOutcome, at date: Date = Date()) throws {
        let middle =
            switch outcome {
            case .newVersion(let version): "New \(version)"
            case .upToDate: "Up to date"
            case .serverInvalid: "Server invalid"
            }
        let line = "Old \(old)|\(middle)|Time \(Self.pythonUTCString(date))\n"
        try append(line, toFileNamed: layout.versionCheckLog, in: path)
    }

    /// The check log's lines; empty lines are skipped, any other malformed line corrupts the log.
    public func readCheckLog() -> FileCondition<[CheckLogLine]> {
        let file = path(of: layout.versionCheckLog)
        guard let data = FileManager.default.contents(atPath: file) else {
            return FileManager.default.fileExists(atPath: file) ? .corrupted(reason: "the check log cannot be read") : .missing
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .corrupted(reason: "the check log is not UTF-8 text")
        }
        var lines: [CheckLogLine] = []
        // `isNewline`, not "\n": in Swift "\r\n" is one Character, and logs may come from Windows.
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty { continue }
            guard let parsed = Self.parseCheckLogLine(line) else {
                return .corrupted(reason: "line \(index + 1) of the check log is not 'Old X|New Y|Time T': \(quoted(line))")
            }
            lines.append(parsed)
        }
        return .valid(lines)
    }

    static func parseCheckLogLine(_ line: String) -> CheckLogLine? {
        let fields = line.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].hasPrefix("Old "), fields[2].hasPrefix("Time "),
            let old = try? Version(String(fields[0].dropFirst(4)))
        else { return nil }
        let time = String(fields[2].dropFirst(5))
        guard !time.isEmpty else { return nil }
        let outcome: CheckOutcome
        switch fields[1] {
        case "Up to date": outcome = .upToDate
        case "Server invalid": outcome = .serverInvalid
        case let middle where middle.hasPrefix("New "):
            guard let new = try? Version(String(middle.dropFirst(4))) else { return nil }
            outcome = .newVersion(new)
        default:
            return nil
        }
        return CheckLogLine(old: old, outcome: outcome, time: time)
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, as Python's `str(datetime.utcnow())` prints it.
    static func pythonUTCString(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let micros = Int((date.timeIntervalSince1970 - seconds) * 1_000_000)
        var time = time_t(seconds)
        var parts = tm()
        // The C library's calendar: FoundationEssentials' time zones need data a static binary lacks.
        gmtime_r(&time, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2)) "
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(micros, 6))"
    }

    // MARK: filelist.txt

    /// The files the last update installed, as paths relative to the folder (folders end with
    /// `/`). Entries that would leave the folder or name a layout file corrupt the list.
    public func readFileList() -> FileCondition<[String]> {
        let file = path(of: layout.fileList)
        guard let data = FileManager.default.contents(atPath: file) else {
            return FileManager.default.fileExists(atPath: file) ? .corrupted(reason: "\(layout.fileList) cannot be read") : .missing
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .corrupted(reason: "\(layout.fileList) is not UTF-8 text")
        }
        var entries: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = String(raw)
            if line.trimmingWhitespace().isEmpty { continue }
            guard let entry = normalizedListEntry(line) else {
                return .corrupted(reason: "\(layout.fileList) lists \(quoted(line)), which is outside the app folder or reserved")
            }
            entries.append(entry)
        }
        return .valid(entries)
    }

    /// A list entry as a clean relative path (`./a//b` → `a/b`; folders keep one trailing `/`),
    /// or `nil` when it leaves the folder or names a layout file.
    func normalizedListEntry(_ line: String) -> String? {
        let isFolder = line.hasSuffix("/")
        var relative = line
        if relative.hasPrefix(path + "/") {
            relative = String(relative.dropFirst(path.count + 1))
        }
        guard !relative.hasPrefix("/") else { return nil }
        let components = relative.split(separator: "/").filter { $0 != "." }
        guard !components.isEmpty, !components.contains(".."), !layout.reservedNames.contains(String(components[0])) else {
            return nil
        }
        return components.joined(separator: "/") + (isFolder ? "/" : "")
    }

    func writeFileList(_ entries: [String]) throws {
        let text = entries.map { $0 + "\n" }.joined()
        try AtomicFile.write(Array(text.utf8), to: path(of: layout.fileList))
    }

    // MARK: Helpers

    /// Appends `text` to the file `name` in `folder`, creating it (0644) if needed. The file is
    /// opened relative to the folder with `O_NOFOLLOW`: a symlink planted in its place (to
    /// `/etc/…` or anywhere outside the app folder) is refused, never written through.
    func append(_ text: String, toFileNamed name: String, in folder: String) throws {
        let file = folder + "/" + name
        func failure(_ errno: Errno) -> AutoupdateError {
            let why = errno == .tooManySymbolicLinkLevels ? "it is a symlink, which autoupdate never writes through" : "\(errno)"
            return AutoupdateError(.fileSystem, "cannot write \(quoted(file)): \(why)", underlying: errno)
        }
        let directory = try AtomicFile.open(folder: folder)
        let opened = OpenDescriptor(
            taking: try Syscall.openAt(directory.raw, name, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW, 0o644).mapError(failure).get())
        let descriptor = opened.raw
        // pyautoupdate starts each line with a newline, so its files end without one.
        var separator = ""
        let end = lseek(descriptor, 0, SEEK_END)
        if end > 0 {
            var last: UInt8 = 0
            if pread(descriptor, &last, 1, end - 1) == 1, last != UInt8(ascii: "\n") {
                separator = "\n"
            }
        }
        let bytes = Array((separator + text).utf8)
        if case .failure(let errno) = withExtendedLifetime(opened, { bytes.withUnsafeBytes { Syscall.writeAll(descriptor, $0) } }) {
            throw failure(errno)
        }
    }

    // MARK: Leftovers

    /// Removes the temporary files (`.version.txt.tmp-N`, …) that an atomic write killed between
    /// its write and its rename leaves, in the app folder (for the layout's files only) and in
    /// the update folder. Those written under the update lock go at once; the others (a check
    /// writes `.queue` without it) only when older than a minute, so that a concurrent writer
    /// never loses its own.
    ///
    /// - Important: The caller holds the update lock.
    func removeStaleTemporaries(now: Date = Date()) {
        let lockedNames: Set<String> = [layout.versionDoc, layout.fileList, "journal.json", "highest-version.txt", "bad-versions.txt"]
        for (folder, names) in [(path, [layout.versionDoc, layout.fileList, layout.queueUpdate]), (updateDirectory, nil)] {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            for entry in entries where entry.hasPrefix(".") && entry.contains(".tmp-") {
                // `.NAME.tmp-N`, as AtomicFile names them.
                let target = entry.dropFirst().components(separatedBy: ".tmp-")[0]
                guard names.map({ $0.contains(target) }) ?? true else { continue }
                let file = folder + "/" + entry
                var info = stat()
                guard lstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
                let age = now.timeIntervalSince1970 - TimeInterval(info.st_mtim.tv_sec)
                if lockedNames.contains(target) || age > 60 {
                    _ = unlink(file)
                }
            }
        }
    }

    // MARK: Bookkeeping

    /// Where autoupdate keeps a file of its own (the audit trail, a rejected `version.txt`):
    /// inside the update folder, so that the app folder's top level holds only the seed's names
    /// and the app's files. A copy that autoupdate 0.1 kept at the top level is moved in the
    /// first time (a symlink there is left alone, never followed).
    func bookkeepingPath(_ name: String) -> String {
        let path = updateDirectory + "/" + name
        let legacy = self.path(of: name)
        var info = stat()
        if lstat(path, &info) != 0, lstat(legacy, &info) == 0, info.st_mode & S_IFMT == S_IFREG {
            try? FileManager.default.createDirectory(atPath: updateDirectory, withIntermediateDirectories: true)
            _ = rename(legacy, path)
        }
        return path
    }

    /// The audit trail of checks and updates (``AppLayout/auditLog``, in the update folder).
    public var auditLogPath: String { bookkeepingPath(layout.auditLog) }

    /// Where the last `version.txt` the server sent that was not a version is kept
    /// (``AppLayout/serverInvalidDump``, in the update folder).
    public var serverInvalidDumpPath: String { bookkeepingPath(layout.serverInvalidDump) }

    func removeIfPresent(_ file: String) throws {
        do {
            try FileManager.default.removeItem(atPath: file)
        } catch let error as CocoaError where error.code == .fileNoSuchFile {
        } catch {
            guard FileManager.default.fileExists(atPath: file) else { return }
            throw AutoupdateError(.fileSystem, "cannot remove \(quoted(file)): \(describeFileError(error))", underlying: error)
        }
    }

    // MARK: Locks

    /// Held by whoever updates the folder, so that two updaters never work on it at once.
    func lockForUpdate() throws -> FileLock {
        try FileManager.default.createDirectory(atPath: updateDirectory, withIntermediateDirectories: true)
        guard let lock = try FileLock.acquire(updateDirectory + "/.update.lock", exclusive: true) else {
            throw AutoupdateError(.locked, "another update of \(quoted(path)) is in progress")
        }
        return lock
    }

    /// Taken exclusively by an install, shared by a running app: an install never swaps files
    /// under a running app, and the app cannot start in the middle of a swap.
    func lockForInstall() throws -> FileLock {
        guard let lock = try FileLock.acquire(path, exclusive: true, directory: true) else {
            throw AutoupdateError(.processRunning, "the app in \(quoted(path)) is running; the update will install once it has stopped")
        }
        return lock
    }

    /// Takes a folder lock, retrying for up to two seconds while it is busy: an install holds
    /// it for milliseconds, and a lock just released can linger for a moment in a child being
    /// spawned elsewhere in this process (its copy of the descriptor closes at its exec).
    func waitingBriefly(for take: () throws -> FileLock) async throws -> FileLock {
        let deadline = ContinuousClock.now + .seconds(2)
        var delay = Duration.milliseconds(2)
        while true {
            do {
                return try take()
            } catch let error as AutoupdateError
                where [.locked, .processRunning].contains(error.code) && ContinuousClock.now + delay < deadline
            {
                try await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }

    /// Held while the app runs (shared: several instances may run).
    func lockForRunning() throws -> FileLock {
        guard let lock = try FileLock.acquire(path, exclusive: false, directory: true) else {
            throw AutoupdateError(.locked, "an update is being installed in \(quoted(path)); try again in a moment")
        }
        return lock
    }
}
