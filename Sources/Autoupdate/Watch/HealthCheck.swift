import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a new version proves it is ready during its health window (`--health-cmd`): a command
/// run every ``interval`` until it exits 0 ``passes`` times in a row. Not ready by the window's
/// end means a rollback, as a crash does.
public struct HealthCheck: Sendable, Equatable {
    /// Run with `/bin/sh -c` in the app folder, with the app's environment
    /// (`AUTOUPDATE_DIR` among it); exit 0 means ready.
    public var command: String
    /// Between two runs. Default 2 s.
    public var interval: Duration
    /// Passes in a row needed. Default 1.
    public var passes: Int
    /// A run that takes longer fails (its process group is killed). Default 5 s.
    public var timeout: Duration

    public init(command: String, interval: Duration = .seconds(2), passes: Int = 1, timeout: Duration = .seconds(5)) {
        self.command = command
        self.interval = interval
        self.passes = max(1, passes)
        self.timeout = timeout
    }

    /// Runs the command once: whether it exited 0 within the timeout.
    func probe(in folder: AppFolder, environment: [String: String]) async -> Bool {
        guard
            let child = try? await SpawnedChild.spawn(
                executable: "/bin/sh", arguments: ["-c", command], environment: environment, workingDirectory: folder.path,
                terminal: nil, grace: .seconds(1), holding: nil, onExit: { _, _ in })
        else { return false }
        guard let status = await child.exitStatus(within: timeout) else {
            child.signal(SIGKILL)
            _ = await child.waitForExit()
            return false
        }
        return status.isSuccess
    }
}
