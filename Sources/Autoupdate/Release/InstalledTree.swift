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
        guard let root = try? Folder(path: folder.path) else { return [] }
        var reusable: Set<String> = []
        for entry in manifest.files where entry.type == .file {
            guard let size = entry.size, let expected = entry.sha256 else { continue }
            let parts = entry.path.split(separator: "/").map(String.init)
            if let digest = root.sha256(ofFile: parts, expectedSize: size), digest == expected {
                reusable.insert(entry.path)
            }
        }
        return reusable
    }
}

extension Folder {
    /// SHA-256 of the regular file at `parts` (no symlink followed on the way) when its size is
    /// `expectedSize`; `nil` otherwise.
    func sha256(ofFile parts: [String], expectedSize: Int64) -> String? {
        guard !parts.isEmpty else { return nil }
        return try? withParentDescriptor(parts) { parent, name -> String? in
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
            return total == expectedSize ? digest.finalize() : nil
        }
    }
}
