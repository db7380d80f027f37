internal import CAutoupdateSystem
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
import SystemPackage

/// One spawned child: its pid, and, from a reaper thread, its end.
///
/// Why posix_spawn and not swift-subprocess: the seed's API needs a child that outlives the call
/// that started it (`run(background: true)`), and signals that can never reach a stranger. Here
/// the reaper waits with `WNOWAIT`, ends what is left of the group, and only then reaps, all
/// while ``signal(_:)`` checks "not yet reaped" under the same lock: a pid or group id we signal
/// is always still ours. swift-subprocess reaps inside its own `run`, so a signal sent from
/// outside it can race the reap; and its default teardown leaves grandchildren behind.
final class SpawnedChild: Sendable {
    let pid: Int32
    private let state: Locked<State>

    private struct State {
        var status: TerminationStatus?
        /// Released at the reap, before anyone learns of the end.
        var lock: FileLock?
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<TerminationStatus?, Never>] = [:]
        var cancelledWaiters: Set<Int> = []
    }

    /// The variable naming the descriptor through which the child holds the run lock.
    static let lockVariable = "AUTOUPDATE_LOCK_FD"

    private init(pid: Int32) {
        self.pid = pid
        state = Locked(State())
    }

    /// Spawns `executable` (see `autoupdate_spawn` for what the child gets).
    ///
    /// - Parameters:
    ///   - grace: How long members of the group left behind by an exited leader get between
    ///     SIGTERM and SIGKILL.
    ///   - holding: The app folder's run lock. The child inherits it as descriptor 3
    ///     (`AUTOUPDATE_LOCK_FD`), so that it holds the lock for as long as it (or anything it
    ///     passes the descriptor to) lives, even when this process dies first; this process's
    ///     own copy is released once the child and its group are gone.
    ///   - adoptsOrphans: End the orphans this process adopted (see ``Orphans``) once the child
    ///     has ended, as its group is.
    ///   - onExit: Called on the reaper thread once the child is reaped.
    static func spawn(
        executable: String, arguments: [String], environment: [String: String], workingDirectory: String?,
        terminal: Int32?, grace: Duration, holding lock: FileLock?, adoptsOrphans: Bool = false,
        onExit: @escaping @Sendable (Int32, TerminationStatus) -> Void
    ) async throws -> SpawnedChild {
        var pid: pid_t = 0
        let argv = [executable] + arguments
        var environment = environment
        environment[Self.lockVariable] = lock == nil ? nil : "3"
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        for text in argv + envp + [workingDirectory ?? ""] where text.utf8.contains(0) {
            throw AutoupdateError(.invalidArgument, "an argument or environment value holds a NUL byte: \(quoted(text))")
        }
        // The lock's descriptor, above 3 and close-on-exec here, for the spawn to place at 3.
        let inherited = lock?.duplicateDescriptor(minimum: 10) ?? -1
        defer { if inherited >= 0 { close(inherited) } }
        var result: Int32 = 0
        // ETXTBSY: another thread forked while the file was open for writing (it was just written,
        // by an install or a test); the fork's copy of the descriptor closes at its exec.
        for attempt in 1...8 {
            _ = Orphans.register {
                result = withCStrings(argv) { argvPointer in
                    withCStrings(envp) { envpPointer in
                        autoupdate_spawn(&pid, executable, argvPointer, envpPointer, workingDirectory, terminal ?? -1, inherited)
                    }
                }
                return result == 0 ? pid : nil
            }
            guard result == ETXTBSY else { break }
            try await Task.sleep(for: .milliseconds(2 * attempt * attempt))
        }
        guard result == 0 else {
            throw spawnFailure(executable, Errno(rawValue: result), workingDirectory: workingDirectory)
        }
        let child = SpawnedChild(pid: pid)
        child.state.withLock { $0.lock = lock }
        let graceMilliseconds = Int32(clamping: grace.milliseconds)
        BackgroundThread.start(name: "autoupdate.reap", stackSize: 64 * 1024) {
            child.reap(graceMilliseconds: graceMilliseconds, terminal: terminal, adoptsOrphans: adoptsOrphans, onExit: onExit)
        }
        return child
    }

    private static func spawnFailure(_ executable: String, _ errno: Errno, workingDirectory: String?) -> AutoupdateError {
        let shown = quoted(executable)
        let isFolder = FileManager.default.isFolder(atPath: executable)
        let exists = isFolder != nil
        let message =
            switch errno {
            case _ where isFolder == true:
                "cannot start \(shown): it is a folder"
            case .noSuchFileOrDirectory where workingDirectory.map({ !FileManager.default.fileExists(atPath: $0) }) == true:
                "cannot start \(shown): its working directory \(quoted(workingDirectory ?? "")) does not exist"
            case .noSuchFileOrDirectory:
                exists ? "cannot start \(shown): its #! interpreter is missing" : "cannot start \(shown): no such file"
            case .permissionDenied:
                "cannot start \(shown): it is not executable (chmod +x), or a folder on its path is not searchable"
            case .execFormatError:
                "cannot start \(shown): it is not an executable for this machine and has no #! line"
            default:
                "cannot start \(shown): \(errno)"
            }
        return AutoupdateError(.spawn, message, underlying: errno)
    }

    /// The reaper thread's whole life: wait for the end, clear up the group, reap, report.
    private func reap(graceMilliseconds: Int32, terminal: Int32?, adoptsOrphans: Bool, onExit: @Sendable (Int32, TerminationStatus) -> Void)
    {
        var code: Int32 = 0
        var signalNumber: Int32 = 0
        // Fails only with ECHILD, when the host ignores SIGCHLD and the kernel reaped the child
        // for it: the status is lost then, and a kill is the likeliest story.
        let waited = autoupdate_wait_exit(pid, &code, &signalNumber)
        let status: TerminationStatus = waited != 0 ? .signaled(SIGKILL) : signalNumber != 0 ? .signaled(signalNumber) : .exited(code)
        if let terminal {
            _ = autoupdate_reclaim_terminal(terminal)
        }
        // The unreaped leader keeps the group id reserved, so this cannot reach a stranger.
        _ = autoupdate_end_group(pid, pid, graceMilliseconds)
        if adoptsOrphans {
            Orphans.endAdopted(graceMilliseconds: graceMilliseconds)
        }
        let waiters = state.withLock { state in
            // Reaping under the lock keeps signal(_:) from sending to a pid that is no longer ours.
            Orphans.reap(pid)
            state.status = status
            state.lock = nil
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        onExit(pid, status)
        for waiter in waiters {
            waiter.resume(returning: status)
        }
    }

    /// How it ended, or `nil` while it has not been reaped.
    var status: TerminationStatus? {
        state.withLock { $0.status }
    }

    /// Sends `signal` to the child's whole process group.
    ///
    /// - Returns: Whether the child was still there to receive it (not yet reaped).
    @discardableResult
    func signal(_ signal: Int32) -> Bool {
        state.withLock { state in
            guard state.status == nil else { return false }
            return kill(-pid, signal) == 0 || kill(pid, signal) == 0
        }
    }

    /// Waits for the end; cancellation does not cut it short (the caller made sure the child ends).
    func waitForExit() async -> TerminationStatus {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        // Without a cancellation handler the waiter is only ever resumed with a status.
        return await register(id) ?? .signaled(SIGKILL)
    }

    /// Waits for the end, or until the task is cancelled (then `nil`).
    func exitStatusUnlessCancelled() async -> TerminationStatus? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await register(id)
        } onCancel: {
            let waiter = state.withLock { state in
                let waiter = state.waiters.removeValue(forKey: id)
                if waiter == nil, state.status == nil {
                    state.cancelledWaiters.insert(id)
                }
                return waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Waits for the end for at most `timeout`; `nil` when it did not come (or on cancellation).
    func exitStatus(within timeout: Duration) async -> TerminationStatus? {
        await withTaskGroup(of: TerminationStatus?.self) { group in
            group.addTask { await self.exitStatusUnlessCancelled() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? status
        }
    }

    private func register(_ id: Int) async -> TerminationStatus? {
        await withCheckedContinuation { continuation in
            let immediate: TerminationStatus?? = state.withLock { state in
                if let status = state.status {
                    return .some(status)
                }
                if state.cancelledWaiters.remove(id) != nil {
                    return .some(nil)
                }
                state.waiters[id] = continuation
                return .none
            }
            if let immediate {
                continuation.resume(returning: immediate)
            }
        }
    }
}

/// Calls `body` with a NULL-terminated `char *[]` of `strings`, valid only during the call.
private func withCStrings<Result>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result) -> Result {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return (copies + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
}
