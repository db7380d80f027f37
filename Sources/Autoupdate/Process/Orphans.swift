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

/// The children of this process, and the orphans it adopts as a child subreaper.
///
/// A daemon leaves its parent's reach by forking twice and calling `setsid`: its process is
/// reparented to init, outside the app's process group, and outlives the supervisor's teardown.
/// With ``adopt()``, this process becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`): such
/// orphans are reparented to it instead, ended with the app (``endAdopted(graceMilliseconds:)``), and
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
        /// The orphan reaper, parked until the spawned set changes.
        var reaperWaiting: ThreadParker?

        /// A change was made: the parked reaper, to wake after the lock is released.
        mutating func changed() -> ThreadParker? {
            defer { reaperWaiting = nil }
            return reaperWaiting
        }
    }

    private static let state = Locked(State())

    /// Spawns through `spawn` (which returns the pid, or `nil` when it failed) and records the
    /// child, with the registry locked so that the orphan reaper never takes it for an orphan.
    static func register(_ spawn: () -> Int32?) -> Int32? {
        let (pid, reaper) = state.withLock { state -> (Int32?, ThreadParker?) in
            guard let pid = spawn() else { return (nil, nil) }
            state.spawned.insert(pid)
            state.generation += 1
            return (pid, state.changed())
        }
        reaper?.wake()
        return pid
    }

    /// Reaps a spawned child (its reaper thread calls this) and forgets it.
    static func reap(_ pid: Int32) {
        let reaper = state.withLock { state in
            _ = autoupdate_reap(pid)
            state.spawned.remove(pid)
            return state.changed()
        }
        reaper?.wake()
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
        BackgroundThread.start(name: "autoupdate.orphans", stackSize: 64 * 1024) { reapAdopted() }
    }

    /// Whether this process adopts orphans.
    static var isAdopting: Bool {
        state.withLock { $0.adopting }
    }

    /// Ends the adopted orphans: SIGTERM, SIGKILL after `grace`, for as long as new ones appear
    /// (at most 8 rounds). Blocks; called by a reaper thread once the app has ended.
    ///
    /// Each round looks for orphans with the registry locked, so that a child spawned meanwhile
    /// (a health check, another supervisor's app) is known and never taken for one.
    static func endAdopted(graceMilliseconds: Int32) {
        let capacity = 256
        var descriptors = [pollfd](repeating: pollfd(fd: -1, events: 0, revents: 0), count: capacity)
        for _ in 0..<8 {
            let opened = state.withLock { state in
                Array(state.spawned).withUnsafeBufferPointer { known in
                    autoupdate_open_adopted(known.baseAddress, Int32(known.count), &descriptors, Int32(capacity))
                }
            }
            guard opened > 0 else { return }
            autoupdate_end_opened(&descriptors, opened, graceMilliseconds)
        }
    }

    /// The orphan reaper's life: wait for any child's end; reap it unless a reaper thread of
    /// its own will.
    private static func reapAdopted() {
        let parker = ThreadParker()
        /// Parks until `condition` holds, looking again at every change of the spawned set.
        func wait(until condition: (State) -> Bool) {
            while !state.withLock({ state in
                if condition(state) { return true }
                state.reaperWaiting = parker
                return false
            }) {
                parker.park()
            }
        }
        while true {
            let seen = state.withLock { $0.generation }
            let pid = autoupdate_wait_any_exit()
            if pid < 0 {
                if errno == ECHILD {
                    // No child at all: wait for the next spawn.
                    wait { $0.generation != seen }
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
                wait { !$0.spawned.contains(pid) }
            }
        }
    }
}
