import Dispatch
import Foundation
import NIOConcurrencyHelpers
public import Testing

extension Trait where Self == OwnThreadTrait {
    /// Runs each test (each case of a parameterized one) on a thread of its own, off Swift's
    /// shared pool, with at most one such test per core at a time. For suites whose synchronous
    /// work (building trees, compressing, decoding a byte at a time) would hold one of the pool's
    /// few threads for seconds: every test starts at once, and a timing-sensitive test elsewhere
    /// would then spend its time bound waiting for a thread to start its child process. The bound
    /// keeps the heavy tests from crowding the cores instead (unbounded, a one-second read took 20).
    public static var ownThread: Self { OwnThreadTrait() }
}

/// See ``Testing/Trait/ownThread``.
public struct OwnThreadTrait: TestTrait, SuiteTrait, TestScoping {
    /// Each test of a suite gets its own thread; the suite itself none (its tests would then
    /// share one, in turn).
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await Self.slots.acquire()
        defer { Self.slots.release() }
        let executor = ThreadExecutor()
        defer { executor.finish() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }

    private static let slots = Slots(count: ProcessInfo.processInfo.activeProcessorCount)
}

/// A counting semaphore whose waiters are suspended tasks, not blocked threads.
final class Slots: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: NIOLockedValueBox<State>

    init(count: Int) {
        state = NIOLockedValueBox(State(available: max(count, 1)))
    }

    func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = state.withLockedValue { state in
                guard state.available > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.available -= 1
                return true
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the slot to the longest waiter, or makes it available.
    func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// A task executor with one thread of its own: what runs under its preference (the test's
/// nonisolated code, its child tasks, default actors it calls) runs there, in turn.
public final class ThreadExecutor: TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var serving = true
    }

    private let state = NIOLockedValueBox(State())
    /// Signalled once per job enqueued and once by ``finish()``.
    private let signal = DispatchSemaphore(value: 0)

    init() {
        Thread.detachNewThread { [self] in serve() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let queued = state.withLockedValue { state in
            guard state.serving else { return false }
            state.jobs.append(job)
            return true
        }
        if queued {
            signal.signal()
        } else {
            // Late work after the test ended (an actor it used, woken by another task): a thread
            // for the job alone, as an executor may run its jobs on any thread.
            Thread.detachNewThread { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }

    /// Ends the thread once the jobs queued so far have run.
    func finish() {
        signal.signal()
    }

    /// Marks the threads an executor serves (their name, for `ps -L` and debuggers, is not
    /// always applied: Foundation sometimes leaves the creating thread's).
    private static let marker = "autoupdate.test.ownThread"

    /// Whether the calling thread is one a ``ThreadExecutor`` serves.
    public static var isCurrentThread: Bool {
        Thread.current.threadDictionary[marker] as? Bool == true
    }

    private func serve() {
        Thread.current.name = "test.own-thread"
        Thread.current.threadDictionary[Self.marker] = true
        while true {
            signal.wait()
            let next = state.withLockedValue { state -> UnownedJob? in
                if !state.jobs.isEmpty { return state.jobs.removeFirst() }
                // Every job's signal comes after its job is queued, so only finish()'s finds none.
                state.serving = false
                return nil
            }
            guard let next else { return }
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
