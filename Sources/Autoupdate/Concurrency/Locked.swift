#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value shared across threads, every access under a `pthread_mutex_t`.
///
/// Used instead of `Synchronization.Mutex`, whose Linux implementation waits on raw futexes that
/// ThreadSanitizer cannot see: `make tsan` would report every hand-off between the transfer
/// thread and a task as a race. TSan intercepts the pthread calls, so it checks our locking.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // Safe: `value` is read and written only between pthread_mutex_lock and _unlock.
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value. Keep `body` short and never block in it.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
