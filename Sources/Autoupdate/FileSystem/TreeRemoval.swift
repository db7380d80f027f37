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

/// Removes a file, a symlink or a whole folder tree, never following a symlink, whatever the
/// tree's depth and whatever modes its folders have.
///
/// Trees autoupdate removes (a staged update, a backup, a kept version) are its own, but they
/// hold what an archive put there: read-only folders (`0555`, as Nix and Bazel outputs are)
/// that a non-root user cannot delete from until it makes them writable again, and paths longer
/// than `PATH_MAX` that path-based removal cannot name. So it works one folder at a time,
/// relative to descriptors (at most two open), going back up through `..` (checked to be the
/// folder it came from), and gives a folder of its own owner write permission when an entry in
/// it cannot be removed otherwise.
enum TreeRemoval {
    /// Removes `path` (nothing to do when it does not exist).
    ///
    /// - Throws: ``AutoupdateError`` `.fileSystem` naming what could not be removed.
    static func remove(path: String) throws {
        let url = URL(fileURLWithPath: path)
        let parentPath = url.deletingLastPathComponent().path
        switch Syscall.openAt(AT_FDCWD, parentPath, O_RDONLY | O_DIRECTORY) {
        case .failure(.noSuchFileOrDirectory):
            return
        case .failure(let errno):
            throw AutoupdateError(.fileSystem, "cannot remove \(quoted(path)): cannot open its folder (\(errno))", underlying: errno)
        case .success(let descriptor):
            let folder = OpenDescriptor(taking: descriptor)
            try withExtendedLifetime(folder) { try remove(url.lastPathComponent, in: folder.raw, shownAs: path) }
        }
    }

    /// Removes the entry `name` of the open folder `parent`.
    static func remove(_ name: String, in parent: Int32, shownAs shown: String) throws {
        let info: stat
        switch Syscall.statAt(parent, name) {
        case .success(let found): info = found
        case .failure(.noSuchFileOrDirectory): return
        case .failure(let errno): throw failure(shown, errno)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            try unlink(name, in: parent, directory: false, shownAs: shown)
            return
        }
        // The folders walked into, below `parent`: their names and identities (to check `..`).
        var path: [(name: String, device: UInt, inode: UInt)] = []
        // Owned: replacing `current` closes the folder left behind.
        var current = try openFolder(name, in: parent, shownAs: shown)
        path.append((name, UInt(info.st_dev), UInt(info.st_ino)))
        while let (here, _, _) = path.last {
            let shownHere = ([shown] + path.dropFirst().map(\.name)).joined(separator: "/")
            var descended = false
            for (entry, type) in try names(in: current.raw, shownAs: shownHere) {
                var isFolder = type == UInt8(DT_DIR)
                if type == UInt8(DT_UNKNOWN), case .success(let entryInfo) = Syscall.statAt(current.raw, entry) {
                    isFolder = entryInfo.st_mode & S_IFMT == S_IFDIR
                }
                let shownEntry = shownHere + "/" + entry
                if isFolder {
                    let child = try openFolder(entry, in: current.raw, shownAs: shownEntry)
                    var childInfo = stat()
                    guard fstat(child.raw, &childInfo) == 0 else {
                        throw failure(shownEntry, .current)
                    }
                    current = child
                    path.append((entry, UInt(childInfo.st_dev), UInt(childInfo.st_ino)))
                    descended = true
                    break
                }
                try unlink(entry, in: current.raw, directory: false, shownAs: shownEntry)
            }
            if descended { continue }
            // `current` is empty now: go up and remove it.
            path.removeLast()
            guard let above = path.last else {
                try unlink(here, in: parent, directory: true, shownAs: shown)
                return
            }
            let up = OpenDescriptor(
                taking: try Syscall.openAt(current.raw, "..", O_RDONLY | O_DIRECTORY).mapError { failure(shownHere, $0) }.get())
            var upInfo = stat()
            guard fstat(up.raw, &upInfo) == 0, UInt(upInfo.st_dev) == above.device, UInt(upInfo.st_ino) == above.inode else {
                throw AutoupdateError(.fileSystem, "cannot remove \(quoted(shownHere)): its folder was moved while it was being removed")
            }
            current = up
            try unlink(here, in: current.raw, directory: true, shownAs: shownHere)
        }
    }

    /// Opens a folder to list it; one of ours that we may not read or enter is made accessible.
    private static func openFolder(_ name: String, in parent: Int32, shownAs shown: String) throws -> OpenDescriptor {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW
        switch Syscall.openAt(parent, name, flags) {
        case .success(let descriptor):
            return OpenDescriptor(taking: descriptor)
        case .failure(.permissionDenied):
            guard fchmodat(parent, name, 0o700, 0) == 0 else { throw failure(shown, .permissionDenied) }
            return OpenDescriptor(taking: try Syscall.openAt(parent, name, flags).mapError { failure(shown, $0) }.get())
        case .failure(let errno):
            throw failure(shown, errno)
        }
    }

    /// Unlinks an entry; when its folder denies that, gives the folder its owner's write
    /// permission (it is being emptied anyway) and tries again.
    private static func unlink(_ name: String, in folder: Int32, directory: Bool, shownAs shown: String) throws {
        switch Syscall.unlinkAt(folder, name, directory: directory) {
        case .success, .failure(.noSuchFileOrDirectory):
            return
        case .failure(.permissionDenied):
            var info = stat()
            guard fstat(folder, &info) == 0, Syscall.changeMode(folder, mode_t(info.st_mode & 0o7777) | 0o700).isSuccess else {
                throw failure(shown, .permissionDenied)
            }
            if case .failure(let errno) = Syscall.unlinkAt(folder, name, directory: directory), errno != .noSuchFileOrDirectory {
                throw failure(shown, errno)
            }
        case .failure(let errno):
            throw failure(shown, errno)
        }
    }

    private static func names(in folder: Int32, shownAs shown: String) throws -> [(String, UInt8)] {
        let copy = dup(folder)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw failure(shown, .current)
        }
        defer { closedir(stream) }
        var names: [(String, UInt8)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." {
                names.append((name, entry.pointee.d_type))
            }
        }
        return names
    }

    private static func failure(_ shown: String, _ errno: Errno) -> AutoupdateError {
        AutoupdateError(.fileSystem, "cannot remove \(quoted(shown)) (\(errno))", underlying: errno)
    }
}

extension Result {
    /// Whether it is a success.
    var isSuccess: Bool {
        if case .success = self { true } else { false }
    }
}
