import CAutoupdateSystem

/// A thread of ours running one piece of blocking work (a transfer's libcurl loop, an
/// extraction, a decoder, a reaper), never a thread of the cooperative pool: the one place the
/// runtime starts threads.
///
/// The shape of swift-subprocess's `runOnBackgroundThread`: the body's result comes back to a task
/// through ``value`` (a continuation, no thread blocked), or to another thread through ``join()``.
final class BackgroundThread<Value: Sendable>: Sendable {
    private let result = OneShot<Value>()

    /// Starts `body` on a new thread.
    ///
    /// - Parameters:
    ///   - name: The thread's name in `ps -T`, `top -H` and debuggers (at most 15 bytes are kept).
    ///   - stackSize: The stack, when the default (the process's `ulimit -s`) is far more than needed.
    @discardableResult
    static func start(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Value) -> BackgroundThread {
        let thread = BackgroundThread()
        let work = Work(name: name) { [result = thread.result] in
            result.set(body())
        }
        // The box is retained for the thread, which releases it when the body has run.
        let context = Unmanaged.passRetained(work).toOpaque()
        let status = autoupdate_start_thread(
            { context in
                guard let context else { return nil }
                let work = Unmanaged<Work>.fromOpaque(context).takeRetainedValue()
                work.run()
                return nil
            }, context, stackSize ?? 0)
        // Out of threads (EAGAIN) is not a state a runtime can go on from without its work done.
        precondition(status == 0, "cannot start the thread \(name): error \(status)")
        return thread
    }

    /// The body's result, once it has run; suspends the task, not a thread.
    var value: Value {
        get async { await result.value }
    }

    /// The body's result, blocking the calling thread (one of ours) until it has run.
    func join() -> Value {
        result.wait()
    }
}

/// A value set once, awaited by tasks or by threads of ours.
final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([Parker])
        case done(Value)
    }

    private let state = Locked(State.waiting([]))

    /// Sets the value (the first time only) and wakes every waiter.
    func set(_ value: Value) {
        let waiters = state.withLock { state -> [Parker] in
            guard case .waiting(let waiters) = state else { return [] }
            state = .done(value)
            return waiters
        }
        waiters.forEach { $0.wake() }
    }

    /// The value, once set, if it is.
    var current: Value? {
        state.withLock { state in
            if case .done(let value) = state { value } else { nil }
        }
    }

    /// The value; suspends the task until it is set.
    var value: Value {
        get async {
            while true {
                var result: Value?
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    result = register(.task(continuation))
                    if result != nil {
                        continuation.resume()
                    }
                }
                if let result {
                    return result
                }
            }
        }
    }

    /// The value; parks the calling thread (one of ours) until it is set.
    func wait() -> Value {
        let parker = ThreadParker()
        while true {
            if let result = register(.thread(parker)) {
                return result
            }
            parker.park()
        }
    }

    /// The value, or `nil` after registering `waiter` to be woken when it is set.
    private func register(_ waiter: Parker) -> Value? {
        state.withLock { state in
            switch state {
            case .done(let value):
                return value
            case .waiting(var waiters):
                waiters.append(waiter)
                state = .waiting(waiters)
                return nil
            }
        }
    }
}

/// Runs blocking `body` on a thread of its own and returns its result to the calling task.
///
/// The task waits without holding a thread of the cooperative pool. Cancelling it does not stop
/// `body`: work that must be stoppable watches a ``Handoff`` (or another signal) the caller
/// cancels.
func runOnBackgroundThread<Value: Sendable>(
    name: String, _ body: @escaping @Sendable () throws -> Value
) async throws -> Value {
    let thread = BackgroundThread<Result<Value, any Error>>.start(name: name) {
        Result { try body() }
    }
    return try await thread.value.get()
}

/// The thread's closure and name, boxed for `pthread_create`'s context pointer.
private final class Work {
    let name: String
    let body: () -> Void

    init(name: String, body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }

    func run() {
        autoupdate_name_thread(name)
        body()
    }
}
