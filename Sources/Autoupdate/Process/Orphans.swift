internal import CAutoupdateSystem
import Foundation
import Glibc

/// The children of this process, and the orphans it adopts as a child subreaper.
///
/// A daemon leaves its parent's reach by forking twice and calling `setsid`: its process is
/// reparented to init, outside the app's process group, and outlives the supervisor's teardown.
/// With ``adopt()``, this process becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`): such
/// orphans are reparented to it instead, ended with the app (``endAdopted(grace:)``), and
/// reaped by a thread of their own. What remains out of reach is a process that leaves by
/// other means (started by another service, or by a setuid helper), and anything started
/// before this process became a subreaper.
///
/// - Important: The reaper thread reaps every child of this process that autoupdate did not
///   spawn, so adopt orphans only in a process that starts children no other way (the
///   `autoupdate` CLI does: `run` and `watch` adopt).
enum Orphans {
    private struct State {
        /// Spawned children not yet reaped by their own reaper thread.
        var spawned: Set<Int32> = []
        /// Counts spawns, so that a reaper with no children knows when to look again.
        var generation = 0
        var adopting = false
    }

    private static let state = Guarded(State())

    /// Spawns through `spawn` (which returns the pid, or `nil` when it failed) and records the
    /// child, with the registry locked so that the orphan reaper never takes it for an orphan.
    static func register(_ spawn: () -> Int32?) -> Int32? {
        state.withLock { state in
            guard let pid = spawn() else { return nil }
            state.spawned.insert(pid)
            state.generation += 1
            return pid
        }
    }

    /// Reaps a spawned child (its reaper thread calls this) and forgets it.
    static func reap(_ pid: Int32) {
        state.withLock { state in
            _ = autoupdate_reap(pid)
            state.spawned.remove(pid)
        }
    }

    /// Makes this process a child subreaper and starts the thread that reaps adopted orphans;
    /// does nothing the second time.
    static func adopt() {
        let first = state.withLock { state in
            defer { state.adopting = true }
            return !state.adopting
        }
        guard first else { return }
        _ = autoupdate_become_subreaper()
        let thread = Thread { reapAdopted() }
        thread.name = "autoupdate.orphans"
        thread.stackSize = 64 * 1024
        thread.start()
    }

    /// Whether this process adopts orphans.
    static var isAdopting: Bool {
        state.withLock { $0.adopting }
    }

    /// Ends the adopted orphans: SIGTERM, SIGKILL after `grace`, for as long as new ones appear
    /// (at most 8 rounds). Blocks; called by a reaper thread once the app has ended.
    static func endAdopted(graceMilliseconds: Int32) {
        let known = state.withLock { Array($0.spawned) }
        _ = known.withUnsafeBufferPointer { buffer in
            autoupdate_end_adopted(buffer.baseAddress, Int32(buffer.count), graceMilliseconds, 8)
        }
    }

    /// The orphan reaper's life: wait for any child's end; reap it unless a reaper thread of
    /// its own will.
    private static func reapAdopted() {
        while true {
            let seen = state.withLock { $0.generation }
            let pid = autoupdate_wait_any_exit()
            if pid < 0 {
                if errno == ECHILD {
                    // No child at all: wait for the next spawn.
                    state.wait { $0.generation != seen ? () : nil }
                }
                continue
            }
            let isSpawned = state.withLock { state in
                if state.spawned.contains(pid) { return true }
                // An orphan (exited: the wait said so); reaped under the lock, so that a spawn
                // cannot be handed its pid in between.
                _ = waitpid(pid, nil, WNOHANG)
                return false
            }
            if isSpawned {
                // Its own reaper thread reaps it, soon: wait for that.
                state.wait { $0.spawned.contains(pid) ? nil : () }
            }
        }
    }
}
