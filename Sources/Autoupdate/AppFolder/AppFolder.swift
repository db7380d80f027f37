#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage

/// The folder an app is installed in, in the pyautoupdate 1.x layout.
///
/// Every path the library touches on the app's behalf is resolved through it, so that nothing
/// (the executable to run, a file named in `filelist.txt`) can point outside the folder.
public struct AppFolder: Sendable, Hashable {
    /// The folder's absolute, lexically normalized path.
    public let path: String
    /// The names of the layout's files.
    public let layout: AppLayout

    /// Creates a handle on an app folder; nothing is read or created yet.
    ///
    /// - Parameters:
    ///   - path: The folder, absolute or relative to the current directory.
    ///   - layout: The layout's file names (the seed's by default).
    public init(path: String = ".", layout: AppLayout = AppLayout()) {
        self.layout = layout
        var folder = FilePath(path)
        if !folder.isAbsolute {
            folder = FilePath(FileManager.default.currentDirectoryPath).pushing(folder)
        }
        self.path = folder.lexicallyNormalized().string
    }

    /// Resolves a path that must name something inside the folder (the seed's `filepath`).
    ///
    /// Relative paths are taken from the folder; an absolute path is accepted only when it lies
    /// inside it. The check is lexical (`..` is collapsed, symlinks are not followed); whoever
    /// opens the result checks again on disk.
    ///
    /// - Parameter filepath: A path such as `bin/app` or `/opt/myapp/bin/app`.
    /// - Returns: The absolute, normalized path.
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidArgument`` when the
    ///   path is empty, is the folder itself, or leaves it.
    public func resolve(_ filepath: String) throws -> String {
        let shown = quoted(filepath)
        guard !filepath.isEmpty, !filepath.contains("\0") else {
            throw AutoupdateError(.invalidArgument, "the file path \(shown) is empty or holds a NUL byte")
        }
        let root = FilePath(path)
        let requested = FilePath(filepath)
        let resolved: FilePath?
        if requested.isAbsolute {
            let normalized = requested.lexicallyNormalized()
            resolved = normalized.starts(with: root) ? normalized : nil
        } else {
            resolved = root.lexicallyResolving(requested)
        }
        guard let resolved else {
            throw AutoupdateError(.invalidArgument, "the file path \(shown) is outside the app folder '\(path)'")
        }
        guard resolved != root else {
            throw AutoupdateError(.invalidArgument, "the file path \(shown) names the app folder itself, not a file in it")
        }
        return resolved.string
    }
}
