import CAutoupdateSystem
import Foundation
import Glibc
import SystemPackage

/// A folder opened by descriptor. Every path inside it is walked one component at a time with
/// `O_NOFOLLOW`, so a symlink inside (an app's own, or a planted one) is never followed.
final class Folder {
    let descriptor: Int32
    let path: String

    /// Opens a folder (the folder itself may be reached through symlinks: it is the caller's).
    init(path: String) throws {
        self.path = path
        switch Syscall.openAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY) {
        case .success(let opened): descriptor = opened
        case .failure(let errno):
            throw AutoupdateError(.fileSystem, "cannot open the folder \(quoted(path)) (\(errno))", underlying: errno)
        }
    }

    /// Creates `name` inside `path` (if missing) and opens it.
    convenience init(path: String, creating name: String) throws {
        switch Syscall.makeDirectoryAt(AT_FDCWD, path + "/" + name, 0o700) {
        case .success, .failure(.fileExists): break
        case .failure(let errno):
            throw AutoupdateError(.fileSystem, "cannot create \(quoted(path + "/" + name)) (\(errno))", underlying: errno)
        }
        try self.init(path: path + "/" + name)
    }

    deinit {
        close(descriptor)
    }

    /// Opens the folder holding `parts.last`, walking without following symlinks; the caller
    /// closes the result unless it is `descriptor`.
    private func parent(of parts: [String], create: Bool) throws -> Int32 {
        var current = descriptor
        for (index, component) in parts.dropLast().enumerated() {
            var opened = Syscall.openAt(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            if case .failure(.noSuchFileOrDirectory) = opened, create {
                _ = Syscall.makeDirectoryAt(current, component, 0o755)
                opened = Syscall.openAt(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            }
            if current != descriptor {
                close(current)
            }
            switch opened {
            case .success(let next):
                current = next
            case .failure(let errno):
                let where_ = parts[...index].joined(separator: "/")
                throw AutoupdateError(
                    .fileSystem, "\(quoted(path + "/" + where_)) is not a folder that can be entered (\(errno))", underlying: errno)
            }
        }
        return current
    }

    private func withParent<T>(_ parts: [String], create: Bool = false, _ body: (Int32, String) throws -> T) throws -> T {
        let parent = try parent(of: parts, create: create)
        defer { if parent != descriptor { close(parent) } }
        return try body(parent, parts[parts.count - 1])
    }

    private func status(_ parts: [String]) -> stat? {
        guard !parts.isEmpty else { return nil }
        return try? withParent(parts) { parent, name in
            try Syscall.statAt(parent, name).get()
        }
    }

    func exists(_ parts: [String]) -> Bool {
        status(parts) != nil
    }

    func isFolder(_ parts: [String]) -> Bool {
        status(parts).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
    }

    func mode(of parts: [String]) -> mode_t? {
        status(parts).map { $0.st_mode & 0o7777 }
    }

    /// The names in a folder inside this one.
    func list(_ parts: [String]) throws -> [String] {
        let target: Int32
        if parts.isEmpty {
            target = dup(descriptor)
        } else {
            target = try withParent(parts) { parent, name in
                try Syscall.openAt(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW).mapError {
                    AutoupdateError(.fileSystem, "cannot list \(quoted(path + "/" + parts.joined(separator: "/"))) (\($0))", underlying: $0)
                }.get()
            }
        }
        guard let stream = fdopendir(target) else {
            close(target)
            throw AutoupdateError(.fileSystem, "cannot list \(quoted(path))", underlying: Errno.current)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." {
                names.append(name)
            }
        }
        return names
    }

    /// Creates a folder (and missing parents), giving the last one `mode`.
    func makeFolder(_ parts: [String], mode: mode_t) throws {
        try withParent(parts, create: true) { parent, name in
            switch Syscall.makeDirectoryAt(parent, name, mode) {
            case .success:
                // mkdir applies the umask; the archive's mode is meant exactly.
                if case .success(let opened) = Syscall.openAt(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
                    _ = Syscall.changeMode(opened, mode)
                    close(opened)
                }
            case .failure(.fileExists):
                break
            case .failure(let errno):
                throw AutoupdateError(.fileSystem, "cannot create \(quoted(path + "/" + parts.joined(separator: "/"))) (\(errno))", underlying: errno)
            }
        }
    }

    /// Removes a file or symlink.
    func remove(_ parts: [String]) throws {
        try withParent(parts) { parent, name in
            if case .failure(let errno) = Syscall.unlinkAt(parent, name), errno != .noSuchFileOrDirectory {
                throw AutoupdateError(.fileSystem, "cannot remove \(quoted(path + "/" + parts.joined(separator: "/"))) (\(errno))", underlying: errno)
            }
        }
    }

    /// Removes a folder if it is empty (and is a folder); anything else is left alone.
    func removeFolderIfEmpty(_ parts: [String]) {
        guard !parts.isEmpty else { return }
        _ = try? withParent(parts) { parent, name in
            _ = Syscall.unlinkAt(parent, name, directory: true)
        }
    }

    /// Moves an entry (a file, symlink or folder itself, never what a symlink points to) to the
    /// same place in another folder on the same file system, replacing a file there.
    func move(_ parts: [String], to destination: Folder, creatingParents: Bool) throws {
        try withParent(parts) { sourceParent, name in
            try destination.withParent(parts, create: creatingParents) { destinationParent, _ in
                if case .failure(let errno) = Syscall.renameAt(sourceParent, name, destinationParent, name) {
                    throw AutoupdateError(
                        .fileSystem, "cannot move \(quoted(parts.joined(separator: "/"))) from \(quoted(path)) to \(quoted(destination.path)) (\(errno))",
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
