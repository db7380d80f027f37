public import Autoupdate
public import Foundation

/// A server folder and an app folder for update tests, with app versions published by
/// ``Publisher`` (or by hand, as pyautoupdate's docs describe).
public final class UpdateScenario: Sendable {
    /// What a test app's files hold.
    public enum Content: Sendable {
        case text(String, mode: Int = 0o644)
        case bytes([UInt8], mode: Int = 0o644)
        case symlink(String)
        /// A folder (empty unless other paths lie in it), given its mode once everything is written.
        case folder(mode: Int = 0o755)
    }

    public let work: TemporaryDirectory
    public var serverFolder: URL { work.url.appending(path: "server") }
    public var appFolder: URL { work.url.appending(path: "app") }
    public var folder: AppFolder { AppFolder(path: appFolder.path) }

    /// - Parameter inMemory: Keep everything on tmpfs (see ``TemporaryDirectory``).
    public init(inMemory: Bool = false) throws {
        work = try TemporaryDirectory(prefix: "scenario", inMemory: inMemory)
        try FileManager.default.createDirectory(at: serverFolder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: appFolder, withIntermediateDirectories: true)
    }

    /// Writes a tree into `folder` (created). Folder modes are set last, deepest first, so that
    /// a read-only folder can be filled first.
    public static func write(_ tree: [String: Content], to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var folderModes: [(String, Int)] = []
        for (path, content) in tree {
            let url = folder.appending(path: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            switch content {
            case .folder(let mode):
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
                folderModes.append((url.path, mode))
            case .text(let text, let mode):
                try Data(text.utf8).write(to: url)
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            case .bytes(let bytes, let mode):
                try Data(bytes).write(to: url)
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            case .symlink(let target):
                try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: target)
            }
        }
        for (path, mode) in folderModes.sorted(by: { $0.0.count > $1.0.count }) {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }
    }

    /// What a tree looks like once written: the snapshot an installed version must equal.
    public static func snapshot(_ tree: [String: Content]) throws -> TreeSnapshot {
        let folder = try TemporaryDirectory()
        try write(tree, to: folder.url)
        return try TreeSnapshot(folder.url)
    }

    /// Publishes a version of the app to the server folder: by default as autoupdate 0.1 did
    /// (`version.txt` and the archive only, so that a later publish of any version replaces
    /// them, as a replaying or lying server would), or into the release index with `release`.
    @discardableResult
    public func publish(
        _ tree: [String: Content], version: String, archive: String = "project.zip", signedWith key: Minisign.SecretKey? = nil,
        versionExpiresIn: Duration? = nil, app: String? = nil, in subfolder: String? = nil, release: ReleaseOptions = .withoutIndex
    ) throws -> Publisher.Result {
        let source = work.url.appending(path: "src-\(version)-\(UUID().uuidString)")
        try Self.write(tree, to: source)
        let output = subfolder.map { serverFolder.appending(path: $0) } ?? serverFolder
        return try Publisher.publish(
            source: source.path, version: try Version(version), to: output.path, archive: try ArchiveName(archive),
            secretKey: key, versionExpiresIn: versionExpiresIn, app: app, release: release)
    }

    /// The app folder's contents, without the update folder and the files a check may write
    /// (`version_check.log`, `.queue`): what must be byte-identical after a failed update.
    public func appSnapshot() throws -> TreeSnapshot {
        let layout = AppLayout()
        let skipped: Set<String> = [layout.updateDir, layout.versionCheckLog, layout.queueUpdate]
        return try TreeSnapshot(appFolder).filtering { path in
            !skipped.contains(String(path.split(separator: "/").first ?? ""))
        }
    }

    /// The app's own files only (also without version.txt and filelist.txt): what a version
    /// looks like once installed.
    public func appFiles() throws -> TreeSnapshot {
        try appSnapshot().filtering { $0 != "version.txt" && $0 != "filelist.txt" }
    }
}

extension TreeSnapshot {
    /// The nodes whose path passes `include`.
    public func filtering(_ include: (String) -> Bool) -> TreeSnapshot {
        TreeSnapshot(nodes: nodes.filter { include($0.key) })
    }
}
