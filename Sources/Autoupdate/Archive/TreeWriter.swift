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

/// Writes an extracted tree under a destination folder, safely.
///
/// Every operation is relative to a descriptor of the destination (`openat` and friends) and
/// never follows a symlink (`O_NOFOLLOW` on every path component), so an entry cannot write
/// through a link, whatever is on disk. It never overwrites anything it did not create: an entry
/// that collides with a pre-existing file is refused. Everything it created is recorded, so a
/// failed extraction is rolled back to the destination as it was.
final class TreeWriter {
    enum Node: Equatable {
        case file, directory, symlink, hardlink
    }

    /// Walks from the destination's descriptor: every folder an entry needs.
    private let walker: PathWalker
    private let destination: String

    /// The destination's descriptor (for an unnamed spool file inside it).
    var rootDescriptor: Int32 { walker.root.raw }
    /// The destination and the folders above it that this writer created, outermost first.
    private let createdFolders: [String]
    /// What this writer created, in order, for rollback.
    private var created: [(path: String, node: Node)] = []
    /// What this writer created, by path.
    private(set) var nodes: [String: Node] = [:]

    init(destination: String) throws {
        self.destination = destination
        if let isFolder = FileManager.default.isFolder(atPath: destination) {
            guard isFolder else {
                throw AutoupdateError(.fileSystem, "the destination \(quoted(destination)) exists and is not a folder")
            }
            createdFolders = []
        } else {
            // The missing folders, outermost first, so that a rollback removes exactly those.
            var missing: [String] = []
            var probe = FilePath(destination).lexicallyNormalized()
            while !probe.isEmpty, !FileManager.default.fileExists(atPath: probe.string) {
                missing.insert(probe.string, at: 0)
                let parent = probe.removingLastComponent()
                if parent == probe { break }
                probe = parent
            }
            do {
                try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
            } catch {
                throw AutoupdateError(
                    .fileSystem, "cannot create the destination \(quoted(destination)): \(describeFileError(error))", underlying: error)
            }
            createdFolders = missing
        }
        switch Syscall.openAt(AT_FDCWD, destination, O_RDONLY | O_DIRECTORY) {
        // Bounded, so that a huge tree cannot exhaust descriptors.
        case .success(let descriptor): walker = PathWalker(root: OpenDescriptor(taking: descriptor), maxCached: 128)
        case .failure(let errno):
            throw AutoupdateError(.fileSystem, "cannot open the destination \(quoted(destination)) (\(errno))", underlying: errno)
        }
    }

    /// The folder at `components` inside the destination, creating missing folders if asked.
    ///
    /// - Throws: ``AutoupdateError/Code/unsafeEntry`` when a component is a symlink or a file.
    private func folder(_ components: ArraySlice<String>, create: Bool, entry: String) throws -> OpenDescriptor {
        do {
            return try walker.folder(components, creatingWith: create ? 0o700 : nil) { record($0, .directory) }
        } catch {
            switch error {
            case .notAFolder(let path, _): throw notAFolder(path, entry: entry)
            case .cannotCreate(let path, let errno): throw failure("cannot create the folder \(quoted(path))", entry: entry, errno: errno)
            case .cannotOpen(let path, let errno): throw failure("cannot open the folder \(quoted(path))", entry: entry, errno: errno)
            }
        }
    }

    private func notAFolder(_ path: String, entry: String) -> AutoupdateError {
        if nodes[path] == .file || nodes[path] == .hardlink {
            return AutoupdateError(
                .unsafeEntry, "entry \(quoted(entry)) needs \(quoted(path)) to be a folder, but an earlier entry made it a file")
        }
        if isForeignSymlink(path.split(separator: "/").map(String.init)) {
            return AutoupdateError(.unsafeEntry, "entry \(quoted(entry)) would write through the symlink \(quoted(path))")
        }
        return AutoupdateError(.unsafeEntry, "entry \(quoted(entry)) needs \(quoted(path)) to be a folder, but it is not")
    }

    private func failure(_ what: String, entry: String, errno: Errno) -> AutoupdateError {
        AutoupdateError.extraction(entry, what, errno)
    }

    private func record(_ path: String, _ node: Node) {
        created.append((path, node))
        nodes[path] = node
    }

    // MARK: Entries

    /// Creates a folder (and its missing parents); an existing folder is merged into.
    func makeDirectory(_ components: [String], entry: String) throws {
        if nodes[components.joined(separator: "/")] == .symlink {
            throw AutoupdateError(.unsafeEntry, "entry \(quoted(entry)) is a folder where an earlier entry is a symlink")
        }
        _ = try folder(components[...], create: true, entry: entry)
    }

    /// Creates an empty file for writing; a file of this archive with the same name is replaced
    /// (a later tar member wins), anything else is refused.
    func createFile(_ components: [String], entry: String, replacing: Bool) throws -> Int32 {
        let folder = try folder(components.dropLast(), create: true, entry: entry)
        let parent = folder.raw
        let name = components[components.count - 1]
        let path = components.joined(separator: "/")
        try makeRoom(for: path, parent: parent, name: name, entry: entry, replacing: replacing)
        switch withExtendedLifetime(folder, { Syscall.openAt(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600) }) {
        case .success(let descriptor):
            record(path, .file)
            return descriptor
        case .failure(.fileExists):
            throw AutoupdateError.alreadyInDestination(path)
        case .failure(let errno):
            throw failure("cannot create the file", entry: entry, errno: errno)
        }
    }

    /// Removes an earlier file of this archive with the same path, or refuses the collision.
    private func makeRoom(for path: String, parent: Int32, name: String, entry: String, replacing: Bool) throws {
        guard let existing = nodes[path] else { return }
        guard replacing, existing == .file || existing == .hardlink else {
            throw AutoupdateError(.unsafeEntry, "entry \(quoted(entry)) collides with an earlier entry of the same name")
        }
        if case .failure(let errno) = Syscall.unlinkAt(parent, name) {
            throw failure("cannot replace the earlier entry", entry: entry, errno: errno)
        }
        nodes[path] = nil
    }

    /// Creates a hard link to a file this archive created earlier.
    func link(_ components: [String], to target: [String], entry: String, replacing: Bool) throws {
        let targetPath = target.joined(separator: "/")
        guard nodes[targetPath] == .file || nodes[targetPath] == .hardlink else {
            throw AutoupdateError(
                .unsafeEntry, "hard link \(quoted(entry)) points to \(quoted(targetPath)), which is not an earlier file of the archive")
        }
        let sourceFolder = try folder(target.dropLast(), create: false, entry: entry)
        let parentFolder = try folder(components.dropLast(), create: true, entry: entry)
        let name = components[components.count - 1]
        let path = components.joined(separator: "/")
        try makeRoom(for: path, parent: parentFolder.raw, name: name, entry: entry, replacing: replacing)
        let linked = withExtendedLifetime((sourceFolder, parentFolder)) {
            Syscall.linkAt(sourceFolder.raw, target[target.count - 1], parentFolder.raw, name)
        }
        switch linked {
        case .success:
            record(path, .hardlink)
        case .failure(.fileExists):
            throw AutoupdateError.alreadyInDestination(path)
        case .failure(let errno):
            throw failure("cannot create the hard link", entry: entry, errno: errno)
        }
    }

    /// Creates a symlink (its target was checked by the policy).
    func symlink(_ components: [String], target: String, entry: String) throws {
        let parent = try folder(components.dropLast(), create: true, entry: entry)
        let path = components.joined(separator: "/")
        if nodes[path] != nil {
            throw AutoupdateError.symlinkCollides(entry)
        }
        switch withExtendedLifetime(parent, { Syscall.symlinkAt(target, parent.raw, components[components.count - 1]) }) {
        case .success:
            record(path, .symlink)
        case .failure(.fileExists):
            throw AutoupdateError.alreadyInDestination(path)
        case .failure(let errno):
            throw failure("cannot create the symlink", entry: entry, errno: errno)
        }
    }

    /// Whether a path inside the destination is a symlink this writer did not create.
    func isForeignSymlink(_ components: [String]) -> Bool {
        let path = components.joined(separator: "/")
        // A parent that cannot be walked holds nothing this path could lead through.
        guard nodes[path] == nil, !components.isEmpty, let parent = try? walker.parent(of: components),
            case .success(let info) = Syscall.statAt(parent.folder.raw, parent.name)
        else {
            return false
        }
        return info.st_mode & S_IFMT == S_IFLNK
    }

    /// Reads a small file this writer created and removes it (a zip symlink's target).
    func takeSmallFile(_ components: [String], limit: Int, entry: String) throws -> [UInt8] {
        let folder = try folder(components.dropLast(), create: false, entry: entry)
        let parent = folder.raw
        let name = components[components.count - 1]
        let file: OpenDescriptor
        switch Syscall.openAt(parent, name, O_RDONLY | O_NOFOLLOW) {
        case .success(let opened): file = OpenDescriptor(taking: opened)
        case .failure(let errno): throw failure("cannot read the symlink's target", entry: entry, errno: errno)
        }
        let bytes: [UInt8]
        switch Syscall.readUpTo(file.raw, limit + 1) {
        case .success(let read): bytes = read
        case .failure(let errno): throw failure("cannot read the symlink's target", entry: entry, errno: errno)
        }
        guard bytes.count <= limit else {
            throw AutoupdateError(.unsafeEntry, "symlink \(quoted(entry)) has a target longer than \(limit) bytes")
        }
        if case .failure(let errno) = withExtendedLifetime(folder, { Syscall.unlinkAt(parent, name) }) {
            throw failure("cannot replace the file by a symlink", entry: entry, errno: errno)
        }
        nodes[components.joined(separator: "/")] = nil
        return bytes
    }

    /// Sets a file's mode after the fact (zip modes arrive with the central directory).
    func setFileMode(_ components: [String], mode: UInt32, entry: String) throws {
        let parent = try folder(components.dropLast(), create: false, entry: entry)
        let file: OpenDescriptor
        switch withExtendedLifetime(parent, { Syscall.openAt(parent.raw, components[components.count - 1], O_RDONLY | O_NOFOLLOW) }) {
        case .success(let opened): file = OpenDescriptor(taking: opened)
        case .failure(let errno): throw failure("cannot open the file to set its mode", entry: entry, errno: errno)
        }
        if case .failure(let errno) = Syscall.changeMode(file.raw, mode_t(mode)) {
            throw failure("cannot set the mode", entry: entry, errno: errno)
        }
    }

    /// Gives every folder this writer created its final mode and time, deepest first (so that a
    /// read-only folder never blocks the work inside it). Folders without an entry get 0755.
    func finishFolders(attributes: [String: (mode: UInt32, modificationTime: Int64?)]) throws {
        let createdFolders = created.filter { $0.node == .directory }.map(\.path)
        let ordered = createdFolders.sorted { $0.split(separator: "/").count > $1.split(separator: "/").count }
        for path in ordered {
            let components = path.split(separator: "/").map(String.init)
            let folder = try folder(components[...], create: false, entry: path)
            let wanted = attributes[path]
            if case .failure(let errno) = Syscall.changeMode(folder.raw, mode_t(wanted?.mode ?? 0o755)) {
                throw failure("cannot set the folder's mode", entry: path, errno: errno)
            }
            if let time = wanted?.modificationTime, case .failure(let errno) = Syscall.setModificationTime(folder.raw, time) {
                throw failure("cannot set the folder's time", entry: path, errno: errno)
            }
        }
        walker.forgetAll()
    }

    /// Removes everything this writer created, newest first, and the destination itself and the
    /// folders above it if it created them: the file system is left as it was.
    func rollback() {
        walker.forgetAll()
        for (path, node) in created.reversed() {
            let components = path.split(separator: "/").map(String.init)
            // Walked like every write: what an entry created is removed where it is, never
            // through a symlink that replaced one of its folders meanwhile.
            if let parent = try? walker.parent(of: components) {
                _ = Syscall.unlinkAt(parent.folder.raw, parent.name, directory: node == .directory)
            }
        }
        walker.forgetAll()
        created.removeAll()
        nodes.removeAll()
        if let destinationFolder = createdFolders.last {
            // Whatever the loop above could not remove (a folder already given a read-only mode),
            // then the folders above it that were made for it.
            try? TreeRemoval.remove(path: destinationFolder)
            for folder in createdFolders.dropLast().reversed() {
                _ = Syscall.unlinkAt(AT_FDCWD, folder, directory: true)
            }
        }
    }
}

@available(*, unavailable)
extension TreeWriter: Sendable {}
