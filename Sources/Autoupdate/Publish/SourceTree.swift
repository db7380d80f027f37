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

/// A folder to publish, listed in a fixed order: what goes into the archive.
struct SourceTree {
    struct Entry {
        enum Kind: Equatable {
            case file(size: Int64)
            case directory
            case symlink(target: String)
        }

        /// Relative path with `/` separators; folders without a trailing slash.
        let path: String
        let kind: Kind
        /// Permission bits.
        let mode: UInt32
        let modificationTime: Int64
    }

    let root: String
    let entries: [Entry]

    /// What the files hold once extracted, symlink targets included (a zip stores those as data).
    var unpackedBytes: Int64 {
        entries.reduce(0) { total, entry in
            switch entry.kind {
            case .file(let size): total + size
            case .symlink(let target): total + Int64(target.utf8.count)
            case .directory: total
            }
        }
    }

    /// Lists `root`, refusing what clients would refuse: symlinks that leave the tree, devices,
    /// FIFOs, sockets. Top-level names in `skipping` (the layout's own files) are left out.
    init(root: String, skipping reserved: Set<String>) throws {
        self.root = root
        guard FileManager.default.isFolder(atPath: root) == true else {
            throw AutoupdateError(.invalidArgument, "the folder to publish, \(quoted(root)), does not exist or is not a folder")
        }
        var entries: [Entry] = []
        var symlinks: [String: String] = [:]
        func walk(_ relative: String) throws {
            let names = try FileManager.default.contentsOfDirectory(atPath: relative.isEmpty ? root : root + "/" + relative).sorted()
            for name in names {
                if relative.isEmpty, reserved.contains(name) {
                    continue
                }
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else {
                    throw AutoupdateError.unreadable(root + "/" + path)
                }
                let mode = UInt32(info.st_mode) & 0o777
                let time = Int64(info.st_mtim.tv_sec)
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    entries.append(Entry(path: path, kind: .directory, mode: mode, modificationTime: time))
                    try walk(path)
                case S_IFREG:
                    entries.append(Entry(path: path, kind: .file(size: Int64(info.st_size)), mode: mode, modificationTime: time))
                case S_IFLNK:
                    let target = try FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)
                    symlinks[path] = target
                    entries.append(Entry(path: path, kind: .symlink(target: target), mode: 0o777, modificationTime: time))
                default:
                    throw AutoupdateError(
                        .invalidArgument, "\(quoted(path)) is a device, FIFO or socket; only files, folders and symlinks can be published")
                }
            }
        }
        try walk("")
        for (path, target) in symlinks {
            let components = path.split(separator: "/").map(String.init)
            guard
                ExtractionPolicy.symlinkStaysInside(link: components, target: target, symlinks: symlinks, isForeignSymlink: { _ in false })
            else {
                throw AutoupdateError(
                    .invalidArgument,
                    "the symlink \(quoted(path)) points to \(quoted(target)), outside the folder; clients would refuse the archive")
            }
        }
        self.entries = entries
    }
}
