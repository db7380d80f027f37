import Foundation

/// Runs long synchronous work (decoding a megabyte one byte at a time) on a thread of its own.
///
/// Swift's cooperative pool has one thread per core; a test that keeps one busy for seconds
/// delays every other test's tasks, and timing-sensitive tests then measure the wait for a thread.
public func onDedicatedThread<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Swift.Result { try work() })
        }
    }
}
