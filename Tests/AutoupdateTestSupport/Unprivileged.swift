public import Foundation

/// Runs tools as an unprivileged user, as most of our users are: under `runuser -u nobody` when
/// the tests run as root (CI and the development machines do), as the current user otherwise.
/// Root ignores permission bits, so whatever depends on them is tested this way too.
public enum Unprivileged {
    /// The user's name, for messages.
    public static let user = "nobody"

    /// Whether the tests run as root (and so need `runuser` to drop privileges).
    public static var isRoot: Bool { getuid() == 0 }

    /// Runs `executable` with `arguments` as the unprivileged user (a copy of it it can reach,
    /// see ``reachable(_:)``).
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> ChildProcess.Result {
        guard isRoot else {
            return try await ChildProcess.run(
                executable, arguments, environment: environment, currentDirectory: currentDirectory, timeout: timeout)
        }
        let executable = executable.hasPrefix("/") ? try reachable(executable) : executable
        // runuser resets most of the environment; pass what the caller set explicitly.
        let variables = (environment ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try await ChildProcess.run(
            "runuser", ["-u", user, "--", "env"] + variables + [executable] + arguments,
            currentDirectory: currentDirectory, timeout: timeout)
    }

    /// A copy of the file at `path` that the unprivileged user can reach, read and run: the
    /// checkout (and so the built CLI and the test CA) may lie in a folder only root can enter,
    /// as a `mktemp -d` clone does (mode 0700). The copy is kept in a world-readable folder of
    /// /tmp, named after the file's size and time, and reused while the file is unchanged.
    public static func reachable(_ path: String) throws -> String {
        guard isRoot else { return path }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        let time = Int64(((attributes[.modificationDate] as? Date) ?? Date()).timeIntervalSince1970 * 1000)
        let folder = "/tmp/autoupdate-unprivileged-copies"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder)
        let copy = "\(folder)/\(size)-\(time)-\(URL(fileURLWithPath: path).lastPathComponent)"
        if !FileManager.default.fileExists(atPath: copy) {
            let temporary = copy + ".tmp-\(getpid())-\(UUID().uuidString)"
            try FileManager.default.copyItem(atPath: path, toPath: temporary)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: temporary)
            _ = rename(temporary, copy)
            try? FileManager.default.removeItem(atPath: temporary)
        }
        return copy
    }

    /// Makes `url` and everything in it the unprivileged user's (no-op when not root), and lets
    /// that user reach it (the folders above it must be searchable).
    public static func give(_ url: URL) throws {
        guard isRoot else { return }
        let result = try ChildProcess.runBlocking("chown", ["-R", "\(user):", url.path])
        guard result.status == 0 else {
            throw TestFailure("chown -R \(user) \(url.path) failed: \(result.stderr)")
        }
    }
}
