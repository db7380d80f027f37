public import Foundation

/// Runs tools as an unprivileged user, as most of our users are: under `runuser -u nobody` when
/// the tests run as root (CI and the development machines do), as the current user otherwise.
/// Root ignores permission bits, so whatever depends on them is tested this way too.
public enum Unprivileged {
    /// The user's name, for messages.
    public static let user = "nobody"

    /// Whether the tests run as root (and so need `runuser` to drop privileges).
    public static var isRoot: Bool { getuid() == 0 }

    /// Runs `executable` with `arguments` as the unprivileged user.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> ChildProcess.Result {
        guard isRoot else {
            return try await ChildProcess.run(executable, arguments, environment: environment, currentDirectory: currentDirectory, timeout: timeout)
        }
        // runuser resets most of the environment; pass what the caller set explicitly.
        let variables = (environment ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try await ChildProcess.run(
            "runuser", ["-u", user, "--", "env"] + variables + [executable] + arguments,
            currentDirectory: currentDirectory, timeout: timeout)
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
