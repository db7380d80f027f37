public import Foundation

/// An app-like tree with what archives get wrong: nested and empty folders, unicode and very
/// long names, empty and multi-megabyte files, executable bits, symlinks (to a file and to a
/// folder, inside the tree) and a hard link.
public enum SampleTree {
    /// Writes the tree into `root` (which must exist).
    /// - Parameters:
    ///   - hardLinks: Whether to add a hard link (zip has none).
    ///   - small: Small data files, for tests that feed archives a byte at a time.
    public static func write(to root: URL, hardLinks: Bool = true, small: Bool = false) throws {
        let manager = FileManager.default
        func file(_ path: String, _ bytes: [UInt8], mode: Int = 0o644) throws {
            let url = root.appending(path: path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
            try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        }
        try file("README.txt", Array("sample app\n".utf8))
        try file("bin/app", Array("#!/bin/sh\necho app\n".utf8), mode: 0o755)
        try file("bin/helper.sh", Array("#!/bin/sh\nexit 0\n".utf8), mode: 0o700)
        try file("lib/core/data.bin", Fixtures.randomBytes(count: small ? 40_000 : 2_500_000, seed: 42))
        try file("lib/core/zeros.bin", [UInt8](repeating: 0, count: small ? 30_000 : 1_000_000))
        try file("lib/empty.txt", [])
        try file("share/ünïcödé/日本語.txt", Array("unicode\n".utf8))
        let longFolder = String(repeating: "long-folder-name-", count: 6)
        let longName = String(repeating: "very-long-file-name-", count: 9) + ".txt"
        try file("share/\(longFolder)/\(longName)", Array("long\n".utf8))
        try manager.createDirectory(at: root.appending(path: "var/empty/nested"), withIntermediateDirectories: true)
        try manager.createSymbolicLink(atPath: root.appending(path: "bin/app-link").path, withDestinationPath: "app")
        try manager.createSymbolicLink(atPath: root.appending(path: "current").path, withDestinationPath: "lib/core")
        try manager.createSymbolicLink(atPath: root.appending(path: "share/readme").path, withDestinationPath: "../README.txt")
        if hardLinks {
            try manager.linkItem(atPath: root.appending(path: "README.txt").path, toPath: root.appending(path: "lib/README.hardlink").path)
        }
        try manager.setAttributes([.posixPermissions: 0o750], ofItemAtPath: root.appending(path: "lib/core").path)
    }
}
