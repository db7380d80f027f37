import Glibc

/// A value shared by threads that wait for each other's changes: every access under a
/// `pthread_mutex_t`, and a condition that every change is broadcast on.
///
/// pthread, not `Synchronization.Mutex`, for the reason given at ``Locked``.
final class Guarded<Value: Sendable>: @unchecked Sendable {
    // Safe: `value` is read and written only between pthread_mutex_lock and _unlock.
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        changed = .allocate(capacity: 1)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        changed.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value, then wakes every waiter.
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
        return body(&value)
    }

    /// Runs `body` with exclusive access each time the value changes, until it returns a result
    /// (then wakes every waiter). `body` must not block, and must not change the value when it
    /// returns `nil`: no waiter would be woken for that change.
    func wait<Result>(until body: (inout Value) -> Result?) -> Result {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
        while true {
            if let result = body(&value) {
                return result
            }
            pthread_cond_wait(changed, mutex)
        }
    }
}
