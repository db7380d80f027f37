/// The safety rules every archive entry passes before anything touches the disk.
///
/// Names must be relative and stay inside the destination: absolute paths and `..` components
/// are refused (not rewritten), and so are backslashes in zip names (a Windows separator that
/// could mean `..\`). Links must resolve inside the destination as the kernel would resolve them.
enum ExtractionPolicy {
    /// The longest symlink target the extractor accepts (Linux's `PATH_MAX`).
    static let maxLinkTargetLength = 4096

    /// Splits an entry name into its path components, after checking that it stays inside.
    ///
    /// `./` and empty components are dropped, so `./a//b/` gives `["a", "b"]`; the archive's own
    /// root (`./`, or an empty name) gives `[]`. Control characters are refused: installed paths
    /// are recorded one per line in `filelist.txt`, and a name holding a newline would read back
    /// as two other paths (which a later update would then move or delete).
    ///
    /// - Throws: ``AutoupdateError/Code/unsafeEntry`` naming the entry.
    static func components(of name: String, isZip: Bool) throws -> [String] {
        let shown = quoted(name)
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw AutoupdateError(
                .unsafeEntry,
                "entry \(shown) has a control character in its name; filelist.txt, which lists installed files one per line, could not record it"
            )
        }
        guard !name.hasPrefix("/") else {
            throw AutoupdateError(.unsafeEntry, "entry \(shown) has an absolute path; archive entries must be relative")
        }
        if isZip, name.contains("\\") {
            throw AutoupdateError(.unsafeEntry, "entry \(shown) contains a backslash, which zip names must not")
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !components.contains("..") else {
            throw AutoupdateError(.unsafeEntry, "entry \(shown) contains '..'; entries must stay inside the destination")
        }
        return components.map(String.init)
    }

    /// Whether a symlink, resolved as the kernel would, stays inside the destination.
    ///
    /// Resolution starts at the link's folder and walks the target: `..` climbs (never above the
    /// destination), and a component that is itself a symlink of the archive is replaced by its
    /// target, recursively (at most 40 hops, the kernel's limit). A lexical check would not do:
    /// `s -> .` next to `l -> s/../x` looks inside but the kernel resolves `l` outside.
    ///
    /// - Parameters:
    ///   - link: The link's own path components.
    ///   - target: The link's target.
    ///   - symlinks: Every symlink of the archive, by path.
    ///   - isForeignSymlink: Whether a path is a symlink that the archive did not create (one that
    ///     was in the destination before); any target passing through one is refused.
    static func symlinkStaysInside(
        link: [String], target: String, symlinks: [String: String], isForeignSymlink: ([String]) -> Bool
    ) -> Bool {
        guard !target.isEmpty, !target.hasPrefix("/") else {
            return false
        }
        var resolved = Array(link.dropLast())
        var pending = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var hops = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            switch component {
            case ".":
                continue
            case "..":
                guard !resolved.isEmpty else { return false }
                resolved.removeLast()
            default:
                resolved.append(component)
                if let next = symlinks[resolved.joined(separator: "/")] {
                    hops += 1
                    guard hops <= 40, !next.hasPrefix("/") else { return false }
                    resolved.removeLast()
                    pending = next.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + pending
                } else if isForeignSymlink(resolved) {
                    return false
                }
            }
        }
        return true
    }

    /// Permission bits to apply: setuid, setgid and sticky bits are dropped.
    static func permissions(_ mode: UInt32?, isDirectory: Bool) -> UInt32 {
        guard let mode else {
            return isDirectory ? 0o755 : 0o644
        }
        return mode & 0o777
    }
}
