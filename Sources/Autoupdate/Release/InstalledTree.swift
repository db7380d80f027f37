import CAutoupdateSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Compares an installed tree with a release's manifest, byte for byte: a differential update
/// trusts only what is on disk now, never the last manifest (a file changed or damaged since
/// installed is fetched again).
public enum InstalledTree {
    /// The manifest's files that the app folder holds now with the same bytes: a regular file
    /// (reached without following a symlink) of the manifest's size whose SHA-256 matches.
    ///
    /// A file of another size is not read. Unreadable, missing or replaced files are simply not
    /// reusable.
    public static func reusableFiles(of manifest: ReleaseManifest, in folder: AppFolder) -> Set<String> {
        Set(scan(manifest.files.filter { $0.type == .file }, in: folder).keys)
    }

    /// The files of `entries` whose installed bytes are the manifest's, each with what it was
    /// when it was read: an install that leaves such a file in place checks that it has not
    /// changed since.
    static func scan(_ entries: [ReleaseManifest.Entry], in folder: AppFolder) -> [String: InstalledFile] {
        scan(entries, at: folder.path)
    }

    /// ``scan(_:in:)`` of any folder (an interrupted download's extracted files).
    static func scan(_ entries: [ReleaseManifest.Entry], at path: String) -> [String: InstalledFile] {
        guard let root = try? Folder(path: path) else { return [:] }
        var reusable: [String: InstalledFile] = [:]
        for entry in entries where entry.type == .file {
            guard let size = entry.size, let expected = entry.sha256 else { continue }
            let parts = entry.path.split(separator: "/").map(String.init)
            if let (digest, identity) = root.sha256(ofFile: parts, expectedSize: size), digest == expected {
                reusable[entry.path] = InstalledFile(identity: identity, size: size, sha256: digest)
            }
        }
        return reusable
    }

    /// The reusable files an install can leave where they are: listed in `filelist.txt` (the
    /// installed version's, not the app's own), with the mode the new release gives them. The
    /// others are copied into staging.
    static func keptInPlace(
        _ reusable: [String: InstalledFile], manifest: ReleaseManifest, listed: Set<String>
    ) -> [String: InstalledFile] {
        let modes = Dictionary(manifest.files.map { ($0.path, $0.permissions) }, uniquingKeysWith: { first, _ in first })
        return reusable.filter { path, file in listed.contains(path) && modes[path].flatMap { $0 } == file.identity.mode }
    }
}

/// An installed file whose bytes are a release's, as it was when they were read.
struct InstalledFile: Sendable, Hashable {
    let identity: FileIdentity
    let size: Int64
    /// SHA-256, lowercase hex.
    let sha256: String

    /// Whether the file at `parts` still holds these bytes: unchanged since it was read, or,
    /// when something touched it, read again and found the same. `now` is what it is now, when
    /// the caller has looked already.
    func isStill(at parts: [String], in folder: Folder, now: FileIdentity?? = nil) -> Bool {
        guard (now ?? folder.identity(of: parts)) != identity else { return true }
        return folder.sha256(ofFile: parts, expectedSize: size).map { $0.0 == sha256 && $0.1.mode == identity.mode } ?? false
    }
}

/// What a file was when it was read, by `stat`: any write to it, or a file put in its place,
/// changes its change time or its inode (the test git uses for its index).
struct FileIdentity: Sendable, Hashable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    /// Permission bits, with set-id and sticky bits.
    let mode: UInt32
    /// The file type bits (`S_IFMT`).
    let type: UInt32
    let modified: Int64
    let modifiedNanoseconds: Int64
    let changed: Int64
    let changedNanoseconds: Int64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        mode = UInt32(info.st_mode) & 0o7777
        type = UInt32(info.st_mode) & UInt32(S_IFMT)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec)
        changedNanoseconds = Int64(info.st_ctim.tv_nsec)
    }
}

extension Folder {
    /// SHA-256 of the regular file at `parts` (no symlink followed on the way) when its size is
    /// `expectedSize`, with what the file was while it was read; `nil` otherwise, or when the
    /// file changed while it was read.
    func sha256(ofFile parts: [String], expectedSize: Int64) -> (String, FileIdentity)? {
        guard !parts.isEmpty else { return nil }
        return try? withParentDescriptor(parts) { parent, name -> (String, FileIdentity)? in
            guard case .success(let raw) = Syscall.openAt(parent, name, O_RDONLY | O_NOFOLLOW) else { return nil }
            let file = OpenDescriptor(taking: raw)
            var info = stat()
            guard fstat(file.raw, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int64(info.st_size) == expectedSize,
                let digest = try? SHA256Digest()
            else { return nil }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            var total: Int64 = 0
            while true {
                let count = read(file.raw, buffer.baseAddress, buffer.count)
                if count < 0, errno == EINTR { continue }
                guard count >= 0 else { return nil }
                if count == 0 { break }
                digest.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                total += Int64(count)
            }
            var after = stat()
            guard total == expectedSize, fstat(file.raw, &after) == 0 else { return nil }
            let identity = FileIdentity(info)
            return identity == FileIdentity(after) ? (digest.finalize(), identity) : nil
        }
    }
}

extension Folder {
    /// What the entry at `parts` is now (symlinks not followed); `nil` when it is missing or
    /// cannot be reached.
    func identity(of parts: [String]) -> FileIdentity? {
        guard !parts.isEmpty else { return nil }
        let info = try? withParentDescriptor(parts) { parent, name in try Syscall.statAt(parent, name).get() }
        return info.map(FileIdentity.init)
    }

    /// Copies the regular file at `parts` to the same place in `destination` (its folders made
    /// as needed, a file there replaced), with its mode: a reflink where the file system can,
    /// bytes otherwise. Never a hard link: the two copies must stay independent.
    func copyFile(_ parts: [String], to destination: Folder) throws {
        let shown = path + "/" + parts.joined(separator: "/")
        try withParentDescriptor(parts) { sourceParent, name in
            let source = OpenDescriptor(
                taking: try Syscall.openAt(sourceParent, name, O_RDONLY | O_NOFOLLOW).mapError {
                    AutoupdateError.fileSystem("open", shown, $0)
                }.get())
            var info = stat()
            guard fstat(source.raw, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                throw AutoupdateError(.fileSystem, "cannot copy \(quoted(shown)): it is not a regular file")
            }
            try destination.createFolders(Array(parts.dropLast()))
            try destination.withParentDescriptor(parts) { destinationParent, _ in
                _ = Syscall.unlinkAt(destinationParent, name)
                let target = OpenDescriptor(
                    taking: try Syscall.openAt(
                        destinationParent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600
                    ).mapError { AutoupdateError.fileSystem("create", destination.path + "/" + parts.joined(separator: "/"), $0) }.get())
                if autoupdate_clone_file(target.raw, source.raw) != 0 {
                    try Self.copyBytes(from: source.raw, to: target.raw, shownAs: shown)
                }
                _ = Syscall.changeMode(target.raw, mode_t(info.st_mode & 0o7777))
            }
        }
    }

    /// Makes the folders of `parts` (each with mode 755) where they are missing.
    private func createFolders(_ parts: [String]) throws {
        for length in stride(from: 1, through: parts.count, by: 1) {
            try createFolder(Array(parts[..<length]), mode: 0o755)
        }
    }

    private static func copyBytes(from source: Int32, to target: Int32, shownAs shown: String) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(source, buffer.baseAddress, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw AutoupdateError.fileSystem("read", shown, .current) }
            if count == 0 { return }
            if case .failure(let errno) = Syscall.writeAll(target, UnsafeRawBufferPointer(rebasing: buffer[..<count])) {
                throw AutoupdateError.fileSystem("write a copy of", shown, errno)
            }
        }
    }
}
