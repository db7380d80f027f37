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

/// Changes several files of a server folder as one step, so that a failed publish leaves the
/// folder exactly as it was.
///
/// Every new file is first written under a hidden temporary name and flushed (this is where a
/// full disk or a failing compressor strikes, before anything visible changed). ``commit()``
/// then renames them into place in the order they were staged (the archive before its
/// signature, both before `version.txt`), keeping a hard link to each file it replaces; if a
/// rename fails, the renames already done are undone from those links. An update that is
/// dropped without a commit removes its temporaries, and the folder too when it created it.
///
/// A publisher killed during the commit leaves a prefix of the changes made, in order: never a
/// `version.txt` whose archive is missing. Leftover temporaries and backups of the staged names
/// are removed by the next update of the folder.
final class ServerFolderUpdate {
    private enum Change {
        case replace(name: String, temporary: String)
        case remove(name: String)

        var name: String {
            switch self {
            case .replace(let name, _), .remove(let name): name
            }
        }
    }

    let path: String
    private let directory: Int32
    /// Folders this update created (deepest last), removed again when it does not commit.
    private let createdFolders: [String]
    private var changes: [Change] = []
    private var committed = false

    /// Opens `path`, creating it (and missing parents) if needed.
    init(folder path: String) throws {
        self.path = path
        var created: [String] = []
        var missing: [String] = []
        var probe = FilePath(path).lexicallyNormalized()
        while !probe.isEmpty, !FileManager.default.fileExists(atPath: probe.string) {
            missing.append(probe.string)
            let parent = probe.removingLastComponent()
            if parent == probe { break }
            probe = parent
        }
        for folder in missing.reversed() {
            switch Syscall.makeDirectoryAt(AT_FDCWD, folder, 0o755) {
            case .success: created.append(folder)
            case .failure(.fileExists): break
            case .failure(let errno):
                Self.removeFolders(created)
                throw AutoupdateError(.fileSystem, "cannot create the server folder \(quoted(folder)) (\(errno))", underlying: errno)
            }
        }
        switch Syscall.openAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY) {
        case .success(let descriptor): directory = descriptor
        case .failure(let errno):
            Self.removeFolders(created)
            throw AutoupdateError(.fileSystem, "cannot open the server folder \(quoted(path)) (\(errno))", underlying: errno)
        }
        createdFolders = created
    }

    deinit {
        if !committed {
            for case .replace(_, let temporary) in changes {
                _ = Syscall.unlinkAt(directory, temporary)
            }
        }
        close(directory)
        if !committed {
            Self.removeFolders(createdFolders)
        }
    }

    /// Writes the new content of `name` under a temporary name: `body` writes it through the
    /// handle (which it may seek), and the file is flushed.
    ///
    /// - Returns: The temporary file's path, to read the content back (to hash or sign it).
    @discardableResult
    func stage(_ name: String, writing body: (OpenFile) throws -> Void) throws -> String {
        removeLeftovers(of: name)
        let temporary = ".\(name).tmp-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor: Int32
        switch Syscall.openAt(directory, temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644) {
        case .success(let opened): descriptor = opened
        case .failure(let errno):
            throw AutoupdateError(
                .fileSystem, "cannot create a temporary file for \(quoted(path + "/" + name)) (\(errno))", underlying: errno)
        }
        changes.append(.replace(name: name, temporary: temporary))
        let handle = OpenFile(taking: FileDescriptor(rawValue: descriptor))
        do {
            try body(handle)
        } catch let error as AutoupdateError {
            throw error.adding(context: "cannot write \(quoted(path + "/" + name))")
        } catch {
            throw AutoupdateError(.fileSystem, "cannot write \(quoted(path + "/" + name)): \(Self.describe(error))", underlying: error)
        }
        if case .failure(let errno) = Syscall.sync(descriptor) {
            throw AutoupdateError(.fileSystem, "cannot flush \(quoted(path + "/" + name)) (\(errno))", underlying: errno)
        }
        return path + "/" + temporary
    }

    /// Stages `bytes` as the new content of `name`.
    func stage(_ name: String, bytes: [UInt8]) throws {
        try stage(name) { handle in try handle.write(contentsOf: bytes) }
    }

    /// Stages `source` (a published file elsewhere in the server folder) as the new content of
    /// `name`: a hard link, or a copy where the file system has none.
    func stage(_ name: String, sameAs source: String) throws {
        removeLeftovers(of: name)
        let temporary = ".\(name).tmp-\(UInt32.random(in: 0...UInt32.max))"
        if case .success = Syscall.linkAt(AT_FDCWD, source, directory, temporary) {
            changes.append(.replace(name: name, temporary: temporary))
            return
        }
        guard let input = OpenFile(forReadingAtPath: source) else {
            throw AutoupdateError.unreadable(source)
        }
        defer { try? input.close() }
        try stage(name) { output in
            while let data = try input.read(upToCount: 1 << 20), !data.isEmpty {
                try output.write(contentsOf: data)
            }
        }
    }

    /// Removes `name` at the commit, if it is there.
    func remove(_ name: String) {
        removeLeftovers(of: name)
        changes.append(.remove(name: name))
    }

    /// Puts every staged change in place, in order; on failure, undoes those already made.
    ///
    /// - Throws: ``AutoupdateError`` `.fileSystem`; the folder is then as it was.
    func commit() throws {
        var done: [(change: Change, backup: String?)] = []
        do {
            for change in changes {
                let backup = try keepBackup(of: change.name)
                switch change {
                case .replace(let name, let temporary):
                    if case .failure(let errno) = Syscall.renameAt(directory, temporary, directory, name) {
                        throw AutoupdateError(.fileSystem, "cannot put \(quoted(path + "/" + name)) in place (\(errno))", underlying: errno)
                    }
                case .remove(let name):
                    if case .failure(let errno) = Syscall.unlinkAt(directory, name), errno != .noSuchFileOrDirectory {
                        throw AutoupdateError.fileSystem("remove", path + "/" + name, errno)
                    }
                }
                done.append((change, backup))
            }
            if case .failure(let errno) = Syscall.sync(directory) {
                throw AutoupdateError(.fileSystem, "cannot flush the server folder \(quoted(path)) (\(errno))", underlying: errno)
            }
        } catch {
            for (change, backup) in done.reversed() {
                if let backup {
                    _ = Syscall.renameAt(directory, backup, directory, change.name)
                } else if case .replace = change {
                    _ = Syscall.unlinkAt(directory, change.name)
                }
            }
            for case (_, let backup?) in done {
                _ = Syscall.unlinkAt(directory, backup)
            }
            throw error
        }
        committed = true
        for case (_, let backup?) in done {
            _ = Syscall.unlinkAt(directory, backup)
        }
    }

    /// A second name for the file that `name` is now, so that a failed commit can put it back;
    /// `nil` when there is none.
    private func keepBackup(of name: String) throws -> String? {
        let backup = ".\(name).old-\(UInt32.random(in: 0...UInt32.max))"
        switch Syscall.linkAt(directory, name, directory, backup) {
        case .success: return backup
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let errno):
            throw AutoupdateError(
                .fileSystem, "cannot keep a copy of \(quoted(path + "/" + name)) while replacing it (\(errno))", underlying: errno)
        }
    }

    /// Temporaries and backups of `name` that an interrupted publish left.
    private func removeLeftovers(of name: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for leftover in names where leftover.hasPrefix(".\(name).tmp-") || leftover.hasPrefix(".\(name).old-") {
            _ = Syscall.unlinkAt(directory, leftover)
        }
    }

    private static func removeFolders(_ folders: [String]) {
        for folder in folders.reversed() {
            _ = Syscall.unlinkAt(AT_FDCWD, folder, directory: true)
        }
    }

    /// A write's failure, as the `errno` text it carries ("File too large").
    private static func describe(_ error: any Error) -> String {
        describeFileError(error)
    }
}

@available(*, unavailable)
extension ServerFolderUpdate: Sendable {}
