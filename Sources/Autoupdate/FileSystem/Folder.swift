import CAutoupdateSystem
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

/// A folder opened by descriptor. Every path inside it is walked by a ``PathWalker``: one
/// component at a time with `O_NOFOLLOW`, so a symlink inside (an app's own, or a planted one)
/// is never followed.
final class Folder {
    let path: String
    private let walker: PathWalker

    /// The folder's own descriptor.
    var descriptor: Int32 { walker.root.raw }

    /// Opens a folder (the folder itself may be reached through symlinks: it is the caller's).
    init(path: String) throws {
        self.path = path
        switch Syscall.openAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY) {
        case .success(let opened): walker = PathWalker(root: OpenDescriptor(taking: opened), maxCached: Self.maxCachedFolders)
        case .failure(let errno):
            throw AutoupdateError.fileSystem("open the folder", path, errno)
        }
    }

    /// Creates `name` inside `path` (if missing) and opens it.
    convenience init(path: String, creating name: String) throws {
        switch Syscall.makeDirectoryAt(AT_FDCWD, path + "/" + name, 0o700) {
        case .success, .failure(.fileExists): break
        case .failure(let errno):
            throw AutoupdateError.fileSystem("create", path + "/" + name, errno)
        }
        try self.init(path: path + "/" + name)
    }

    private init(descriptor: OpenDescriptor, path: String) {
        self.path = path
        walker = PathWalker(root: descriptor, maxCached: Self.maxCachedFolders)
    }

    /// An install keeps three of these open (the app, the staging and the backup folders), each
    /// walking entries in order: a few folders at a time.
    private static let maxCachedFolders = 16

    /// Opens a folder inside this one, walking without following symlinks.
    func open(_ parts: [String]) throws -> Folder {
        let shown = path + "/" + parts.joined(separator: "/")
        return try withParent(parts) { parent, name in
            switch Syscall.openAt(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
            case .success(let opened): return Folder(descriptor: OpenDescriptor(taking: opened), path: shown)
            case .failure(let errno):
                throw AutoupdateError.fileSystem("open the folder", shown, errno)
            }
        }
    }

    /// Runs `body` with the folder holding `parts.last` (walked without following symlinks;
    /// missing folders made with mode 755 when `create`) and that last name.
    private func withParent<T>(_ parts: [String], create: Bool = false, _ body: (Int32, String) throws -> T) throws -> T {
        let parent: (folder: OpenDescriptor, name: String)
        do {
            parent = try walker.parent(of: parts, creatingWith: create ? 0o755 : nil)
        } catch {
            switch error {
            case .notAFolder(let at, let errno), .cannotOpen(let at, let errno):
                throw AutoupdateError(
                    .fileSystem, "\(quoted(path + "/" + at)) is not a folder that can be entered (\(errno))", underlying: errno)
            case .cannotCreate(let at, let errno):
                throw AutoupdateError.fileSystem("create", path + "/" + at, errno)
            }
        }
        return try withExtendedLifetime(parent.folder) { try body(parent.folder.raw, parent.name) }
    }

    /// ``withParent(_:create:_:)`` for readers elsewhere in the module.
    func withParentDescriptor<T>(_ parts: [String], _ body: (Int32, String) throws -> T) throws -> T {
        try withParent(parts, body)
    }

    /// Forgets the walks into `parts` and below (it moves or goes away).
    private func forgetParent(under parts: [String]) {
        walker.forget(under: parts)
    }

    private func status(_ parts: [String]) -> stat? {
        guard !parts.isEmpty else { return nil }
        return try? withParent(parts) { parent, name in
            try Syscall.statAt(parent, name).get()
        }
    }

    /// What is at a path, symlinks not followed.
    enum EntryKind: Equatable {
        case missing, folder, other
    }

    func kind(of parts: [String]) -> EntryKind {
        guard let info = status(parts) else { return .missing }
        return info.st_mode & S_IFMT == S_IFDIR ? .folder : .other
    }

    func exists(_ parts: [String]) -> Bool {
        status(parts) != nil
    }

    /// What ``tree(skippingTopLevel:makingFoldersAccessible:)`` found.
    struct Listing {
        /// Files and symlinks as paths, folders that hold nothing as paths ending in `/`.
        var entries: [String] = []
        /// Every folder's permission bits (as found, before any was made accessible), by path.
        var folderModes: [String: UInt32] = [:]
    }

    /// Everything inside this folder, depth first with names sorted. Symlinks are never followed.
    ///
    /// - Parameters:
    ///   - skip: Top-level names to leave out.
    ///   - makingFoldersAccessible: Gives every folder that lacks them its owner's read, write
    ///     and search permissions (`u+rwx`) before entering it: a tree about to be moved and
    ///     emptied (a staged update) must be, for a user who is not root. The modes as found are
    ///     in the listing.
    func tree(skippingTopLevel skip: (String) -> Bool, makingFoldersAccessible: Bool = false) throws -> Listing {
        var listing = Listing()
        try collect(descriptor, prefix: "", skip: skip, relax: makingFoldersAccessible, into: &listing)
        return listing
    }

    private func collect(_ directory: Int32, prefix: String, skip: (String) -> Bool, relax: Bool, into listing: inout Listing) throws {
        let listed = try names(in: directory, shownAs: prefix)
        if listed.isEmpty, !prefix.isEmpty {
            listing.entries.append(prefix + "/")
        }
        for (name, type) in listed.sorted(by: { $0.name < $1.name }) {
            if prefix.isEmpty, skip(name) {
                continue
            }
            let path = prefix.isEmpty ? name : prefix + "/" + name
            var info: stat?
            if type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN), case .success(let found) = Syscall.statAt(directory, name) {
                info = found
            }
            guard let info, info.st_mode & S_IFMT == S_IFDIR else {
                listing.entries.append(path)
                continue
            }
            let mode = UInt32(info.st_mode) & 0o7777
            listing.folderModes[path] = mode
            if relax, mode & 0o700 != 0o700, fchmodat(directory, name, mode_t(mode | 0o700), 0) != 0 {
                let error = Errno.current
                throw AutoupdateError(
                    .fileSystem, "cannot make \(quoted(self.path + "/" + path)) writable to move it (\(error))", underlying: error)
            }
            let child = OpenDescriptor(
                taking: try Syscall.openAt(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW).mapError {
                    AutoupdateError(.fileSystem, "cannot list \(quoted(self.path + "/" + path)) (\($0))", underlying: $0)
                }.get())
            try withExtendedLifetime(child) { try collect(child.raw, prefix: path, skip: skip, relax: relax, into: &listing) }
        }
    }

    /// The names in an open folder and their `d_type`s.
    private func names(in directory: Int32, shownAs shown: String) throws -> [(name: String, type: UInt8)] {
        let target = dup(directory)
        guard target >= 0, let stream = fdopendir(target) else {
            if target >= 0 { close(target) }
            throw AutoupdateError(
                .fileSystem, "cannot list \(quoted(shown.isEmpty ? path : path + "/" + shown))", underlying: Errno.current)
        }
        defer { closedir(stream) }
        var names: [(name: String, type: UInt8)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." {
                names.append((name, entry.pointee.d_type))
            }
        }
        return names
    }

    /// Removes a file or symlink.
    func remove(_ parts: [String]) throws {
        forgetParent(under: parts)
        try withParent(parts) { parent, name in
            if case .failure(let errno) = Syscall.unlinkAt(parent, name), errno != .noSuchFileOrDirectory {
                throw AutoupdateError.fileSystem("remove", path + "/" + parts.joined(separator: "/"), errno)
            }
        }
    }

    /// Removes a folder if it is empty (and is a folder); anything else is left alone.
    func removeFolderIfEmpty(_ parts: [String]) {
        guard !parts.isEmpty else { return }
        forgetParent(under: parts)
        _ = try? withParent(parts) { parent, name in
            _ = Syscall.unlinkAt(parent, name, directory: true)
        }
    }

    /// A folder's permission bits (`nil` when `parts` is not a folder).
    func folderMode(_ parts: [String]) -> UInt32? {
        guard let info = status(parts), info.st_mode & S_IFMT == S_IFDIR else { return nil }
        return UInt32(info.st_mode) & 0o7777
    }

    /// Sets a folder's permission bits; a symlink in its place is never followed (nor changed).
    ///
    /// The corresponding C functions are `fchmod` and `fchmodat`.
    func setFolderMode(_ parts: [String], _ mode: UInt32) throws {
        if parts.isEmpty {
            if case .failure(let errno) = Syscall.changeMode(descriptor, mode_t(mode)) {
                throw AutoupdateError.fileSystem("set the mode of", path, errno)
            }
            return
        }
        forgetParent(under: parts)
        try withParent(parts) { parent, name in
            let shown = quoted(path + "/" + parts.joined(separator: "/"))
            var result: Result<Void, Errno>
            switch Syscall.openAt(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
            case .success(let opened):
                let folder = OpenDescriptor(taking: opened)
                result = Syscall.changeMode(folder.raw, mode_t(mode))
            case .failure(.permissionDenied):
                // Unreadable to us: check that it is a folder, then change it by name.
                guard case .success(let info) = Syscall.statAt(parent, name), info.st_mode & S_IFMT == S_IFDIR else {
                    throw AutoupdateError(.fileSystem, "cannot set the mode of \(shown): it is not a folder")
                }
                result = fchmodat(parent, name, mode_t(mode), 0) == 0 ? .success(()) : .failure(.current)
            case .failure(let errno):
                result = .failure(errno)
            }
            if case .failure(let errno) = result {
                throw AutoupdateError(.fileSystem, "cannot set the mode of \(shown) (\(errno))", underlying: errno)
            }
        }
    }

    /// Creates a folder with `mode` (its parents must exist); an existing folder is kept.
    func createFolder(_ parts: [String], mode: UInt32) throws {
        try withParent(parts) { parent, name in
            switch Syscall.makeDirectoryAt(parent, name, mode_t(mode & 0o777)) {
            case .success, .failure(.fileExists): break
            case .failure(let errno):
                throw AutoupdateError.fileSystem("create", path + "/" + parts.joined(separator: "/"), errno)
            }
        }
        try setFolderMode(parts, mode)
    }

    /// Removes an empty folder; fails (naming it) when it holds anything.
    func removeEmptyFolder(_ parts: [String]) throws {
        forgetParent(under: parts)
        try withParent(parts) { parent, name in
            if case .failure(let errno) = Syscall.unlinkAt(parent, name, directory: true), errno != .noSuchFileOrDirectory {
                throw AutoupdateError(
                    .fileSystem, "cannot remove the folder \(quoted(path + "/" + parts.joined(separator: "/"))) (\(errno))",
                    underlying: errno)
            }
        }
    }

    /// Removes a file, a symlink or a whole folder tree inside this folder (see ``TreeRemoval``).
    func removeTree(_ parts: [String]) throws {
        forgetParent(under: parts)
        try withParent(parts) { parent, name in
            try TreeRemoval.remove(name, in: parent, shownAs: path + "/" + parts.joined(separator: "/"))
        }
    }

    /// Moves an entry (a file, symlink or folder itself, never what a symlink points to) to the
    /// same place in another folder on the same file system, replacing a file there.
    func move(_ parts: [String], to destination: Folder, creatingParents: Bool) throws {
        forgetParent(under: parts)
        destination.forgetParent(under: parts)
        try withParent(parts) { sourceParent, name in
            try destination.withParent(parts, create: creatingParents) { destinationParent, _ in
                if case .failure(let errno) = Syscall.renameAt(sourceParent, name, destinationParent, name) {
                    throw AutoupdateError(
                        .fileSystem,
                        "cannot move \(quoted(parts.joined(separator: "/"))) from \(quoted(path)) to \(quoted(destination.path)) (\(errno))",
                        underlying: errno)
                }
            }
        }
    }

    /// Flushes the whole file system this folder is on (data and metadata).
    ///
    /// The corresponding C function is `syncfs`.
    func syncFileSystem() {
        _ = autoupdate_syncfs(descriptor)
    }
}

@available(*, unavailable)
extension Folder: Sendable {}
